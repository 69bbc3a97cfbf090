#!/usr/bin/env bash
# `scripts/check-sql-deps.sh [sql-dir]` (run by `make test`): the repeatable files sql/R__*.sql
# are applied in name order, and their order is their dependency order (docs/ARCHITECTURE.md §6):
# a function or view of file F may call or read only functions and views defined in F or in a
# file that sorts before F. plpgsql resolves names only at run time, so nothing else notices when
# a call goes the other way; this does.
#
# For every R file it collects each `CREATE [OR REPLACE] FUNCTION|PROCEDURE|VIEW schema.name`
# (schemas orderly, api, admin, analytics), then looks for every `schema.name` in the text of
# every R file (`--` comments stripped; string literals count, e.g. register_command's function
# name) and fails, naming the file, the function (or top-level statement) and the later file,
# when a name is defined only in a later file. A name defined in two R files fails too: which
# definition wins would depend on which file happened to change last. Tables and functions of
# the V files are not R definitions and are ignored. Only schema-qualified names are seen: a call
# left to search_path would slip through, so the R files qualify every call (they all do).
# bash and awk only.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-sql}
files=()
while IFS= read -r f; do files+=("$f"); done < <(find "$dir" -maxdepth 1 -name 'R__*.sql' | LC_ALL=C sort)
if [ "${#files[@]}" -eq 0 ]; then
    echo "check-sql-deps: no R__*.sql files in $dir" >&2
    exit 2
fi

LC_ALL=C awk '
# The line without its "--" comment; string literals and dollar-quoted bodies are tracked across
# lines (a "--" inside a string is text). Sets stmt_end when a ";" outside a body ends a statement.
function strip(line,    out, i, n, c, rest, tag) {
    out = ""; n = length(line); stmt_end = 0
    for (i = 1; i <= n; i++) {
        c = substr(line, i, 1)
        if (in_quote) {
            if (c == "\047") in_quote = 0
            out = out c
            continue
        }
        if (c == "-" && substr(line, i + 1, 1) == "-") break
        if (c == "\047") { in_quote = 1; out = out c; continue }
        if (c == "$") {
            rest = substr(line, i)
            if (match(rest, /^\$[A-Za-z_]*\$/)) {
                tag = substr(rest, 1, RLENGTH)
                if (dollar == "") dollar = tag
                else if (tag == dollar) dollar = ""
                out = out tag
                i += RLENGTH - 1
                continue
            }
        }
        if (c == ";" && dollar == "") stmt_end = 1
        out = out c
    }
    return out
}

# Every schema.name in s, lower-cased, into found[1..nfound]; longer names that merely end in one
# (x.orderly.foo, my_orderly.foo) are not one.
function scan(s,    t, name, before) {
    t = tolower(s)
    while (match(t, /(orderly|api|admin|analytics)\.[a-z_][a-z0-9_]*/)) {
        name = substr(t, RSTART, RLENGTH)
        before = RSTART > 1 ? substr(t, RSTART - 1, 1) : ""
        if (before !~ /[a-z0-9_.$"]/) found[++nfound] = name
        t = substr(t, RSTART + RLENGTH)
    }
}

FNR == 1 {
    fileno++
    in_quote = 0; dollar = ""; at_start = 1; context = ""
    pass = (FILENAME == first_file && fileno > 1) ? 2 : pass
}

{
    s = strip($0)
    low = tolower(s)
    defined = ""
    if (match(low, /create[ \t]+(or[ \t]+replace[ \t]+)?(function|procedure|(materialized[ \t]+)?view)[ \t]+(orderly|api|admin|analytics)\.[a-z_][a-z0-9_]*/)) {
        defined = substr(low, RSTART, RLENGTH)
        sub(/.*[ \t]/, "", defined)
    }
    if (pass == 1) {
        if (defined == "" && low ~ /create[ \t]+(or[ \t]+replace[ \t]+)?(function|procedure|(materialized[ \t]+)?view)[ \t]*$/) {
            printf "%s:%d: put the schema-qualified name on the CREATE line, so that this check sees it\n", FILENAME, FNR
            failed = 1
        }
        if (defined != "") {
            if ((defined in def) && def[defined] != FILENAME) {
                printf "%s:%d: %s is defined here and in %s: a function or view belongs to one file\n", \
                    FILENAME, FNR, defined, def[defined]
                failed = 1
            }
            if (!(defined in def)) { def[defined] = FILENAME; def_no[defined] = fileno }
        }
    } else {
        if (at_start && s ~ /[^ \t]/) {
            context = defined != "" ? defined : sprintf("the statement at line %d", FNR)
            at_start = 0
        }
        nfound = 0
        scan(s)
        for (k = 1; k <= nfound; k++) {
            name = found[k]
            if ((name in def) && def_no[name] > fileno - nfiles) {
                printf "%s:%d: %s uses %s, which is defined in the later file %s\n", \
                    FILENAME, FNR, context, name, def[name]
                failed = 1
            }
        }
        if (stmt_end) at_start = 1
    }
}

END {
    if (failed) {
        print "check-sql-deps: an R file may use only what its own file or an earlier one (by name) defines (docs/ARCHITECTURE.md §6)"
        exit 1
    }
}
' pass=1 first_file="${files[0]}" nfiles="${#files[@]}" "${files[@]}" "${files[@]}"
echo "check-sql-deps: ${#files[@]} R files, every call goes to the same or an earlier file"
