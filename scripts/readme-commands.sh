#!/usr/bin/env bash
# `make readme`: writes the README's command reference (between its commands:begin and
# commands:end markers) from the command registry, as a freshly migrated database has it: a
# throw-away cluster (pg_virtualenv) or ORDERLY_TEST_DATABASE_URL's server. The test
# CommandRegistryTests.theReadmeCommandReferenceIsTheRegistry fails until this has been run
# after a command changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${ORDERLY_TEST_DATABASE_URL:-}" ] && [ -z "${ORDERLY_IN_README_CLUSTER:-}" ]; then
    swift build --product orderlyd
    exec env ORDERLY_IN_README_CLUSTER=1 pg_virtualenv -t "$0" "$@"
fi

db="orderly_readme_$$"
if [ -n "${ORDERLY_TEST_DATABASE_URL:-}" ]; then
    url=$(echo "$ORDERLY_TEST_DATABASE_URL" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$db#")
    maintenance=$(echo "$ORDERLY_TEST_DATABASE_URL" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/postgres#")
else
    url="$db"
    maintenance=postgres
fi
psql -X -q -v ON_ERROR_STOP=1 -d "$maintenance" -c "CREATE DATABASE $db"
trap 'psql -X -q -d "$maintenance" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
.build/debug/orderlyd migrate --database-url "$url" --log-level warning
reference=$(mktemp -t orderly-commands.XXXXXX)
.build/debug/orderlyd commands --database-url "$url" > "$reference"

# Everything outside the markers stays as it is.
updated=$(mktemp -t orderly-readme.XXXXXX)
awk -v reference="$reference" '
    index($0, "<!-- commands:begin") == 1 { print; while ((getline line < reference) > 0) print line; skipping = 1; next }
    index($0, "<!-- commands:end") == 1 { skipping = 0 }
    !skipping { print }
' README.md > "$updated"
grep -q "<!-- commands:end" "$updated" || { echo "README.md lacks the commands:begin/commands:end markers" >&2; exit 1; }
cat "$updated" > README.md
rm -f "$reference" "$updated"
echo "README.md: command reference written from the registry"
