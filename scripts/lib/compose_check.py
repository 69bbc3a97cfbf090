#!/usr/bin/env python3
"""The safe defaults of docker-compose.yml (README "Docker"), for scripts/check-least-privilege.sh.

    compose_check.py check OFF.json ON.json DBPORT.json
        OFF: the configuration without ORDERLY_DEMO, ON: with ORDERLY_DEMO=1, DBPORT: with
        docker-compose.db-port.yml added; each as `docker compose config --format json` prints it.
        Prints one line per failed check and exits 1 if there is any.
    compose_check.py render [NAME=VALUE ...] FILE [FILE ...]
        For machines without `docker compose`: reads the files as compose does in the respects
        these files use (${NAME}, ${NAME:-default}, ${NAME-default} and $$ in strings; later files
        merged into earlier ones, lists appended) and prints the JSON to check. Any other
        interpolation form is refused, so a file cannot quietly depend on what this does not do.
"""
import json
import os
import re
import shlex
import sys

VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|(\{[^}]*\}|[A-Za-z_]))")


def interpolate(text, environment):
    def replace(match):
        escaped, name, operator, default, other = match.groups()
        if escaped:
            return "$"
        if other is not None:
            raise SystemExit(f"compose_check: interpolation ${other} is not supported here; use ${{NAME:-default}}")
        value = environment.get(name)
        if operator == ":-" and not value:
            return default
        if operator == "-" and value is None:
            return default
        return value or ""
    return VARIABLE.sub(replace, text)


def render(node, environment):
    if isinstance(node, str):
        return interpolate(node, environment)
    if isinstance(node, list):
        return [render(item, environment) for item in node]
    if isinstance(node, dict):
        return {key: render(value, environment) for key, value in node.items()}
    return node


def merge(base, override):
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def environment_of(service):
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return {key: (None if value is None else str(value)) for key, value in environment.items()}


def words(value):
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def host_ips(service):
    """The host address each published port binds ("" for every interface)."""
    addresses = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            addresses.append(port.get("host_ip") or "")
            continue
        parts = str(port).rsplit(":", 2)
        addresses.append(parts[0] if len(parts) == 3 else "")
    return addresses


def is_loopback(address):
    return address.strip("[]") in ("::1", "localhost") or address.startswith("127.")


def mounts(service):
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            yield volume.get("source") or "", volume.get("target") or ""
        else:
            parts = str(volume).split(":")
            yield parts[0], parts[1] if len(parts) > 1 else ""


def url_user(url):
    match = re.match(r"^postgres(?:ql)?://([^:@/]+)(?::[^@/]*)?@", url or "")
    if match:
        return match.group(1)
    match = re.search(r"(?:^|\s)user=(\S+)", url or "")
    return match.group(1) if match else None


def check(off, on, db_port):
    failures = []

    def expect(condition, message):
        if not condition:
            failures.append(message)

    for label, config in (("docker-compose.yml", off), ("with docker-compose.db-port.yml", db_port)):
        for name, service in (config.get("services") or {}).items():
            for address in host_ips(service):
                expect(is_loopback(address), f"{label}: service {name} publishes a port on {address or 'every interface'}, not on loopback")

    db = off["services"]["db"]
    expect(not (db.get("ports") or []), "docker-compose.yml: db publishes PostgreSQL on the host (use docker-compose.db-port.yml for that)")
    expect(any(is_loopback(a) for a in host_ips(db_port["services"]["db"])),
           "docker-compose.db-port.yml: db is not published on the host's loopback")
    expect(any(source.rstrip("/").endswith("deploy/postgres/initdb") and target.rstrip("/") == "/docker-entrypoint-initdb.d"
               for source, target in mounts(db)),
           "docker-compose.yml: db does not mount deploy/postgres/initdb at /docker-entrypoint-initdb.d")

    db_environment = environment_of(db)
    superuser = db_environment.get("POSTGRES_USER") or "postgres"
    login = db_environment.get("ORDERLY_DB_USER") or "orderly"
    for label, config, wanted in (("without ORDERLY_DEMO", off, False), ("with ORDERLY_DEMO=1", on, True)):
        orderlyd = config["services"]["orderlyd"]
        environment = environment_of(orderlyd)
        arguments = words(orderlyd.get("entrypoint")) + words(orderlyd.get("command"))
        demo = "--demo" in arguments or environment.get("ORDERLY_DEMO") == "1"
        expect(demo == wanted, f"{label}: orderlyd {'does not create' if wanted else 'creates'} the demo users"
                               f" (arguments {arguments}, ORDERLY_DEMO={environment.get('ORDERLY_DEMO')!r})")
        user = url_user(environment.get("ORDERLY_DATABASE_URL")) or environment.get("PGUSER")
        expect(user == login, f"{label}: orderlyd logs in as {user!r}, not as the login the init script makes ({login!r})")
        expect(user != superuser, f"{label}: orderlyd logs in as the superuser {superuser!r}")
        expect(environment.get("PGPASSWORD") is not None and environment.get("PGPASSWORD") == environment_of(config["services"]["db"]).get("ORDERLY_DB_PASSWORD"),
               f"{label}: orderlyd's PGPASSWORD is not the ORDERLY_DB_PASSWORD the init script sets")
    return failures


def main(arguments):
    if arguments[:1] == ["check"] and len(arguments) == 4:
        configs = []
        for path in arguments[1:]:
            with open(path) as file:
                configs.append(json.load(file))
        failures = check(*configs)
        for failure in failures:
            print(f"compose_check: {failure}")
        return 1 if failures else 0
    if arguments[:1] == ["render"] and len(arguments) > 1:
        import yaml  # Debian's python3-yaml (scripts/install-deps.sh --test)
        environment = dict(os.environ)
        files = []
        for argument in arguments[1:]:
            if "=" in argument and not files:
                name, value = argument.split("=", 1)
                environment[name] = value
            else:
                files.append(argument)
        config = {}
        for path in files:
            with open(path) as file:
                config = merge(config, render(yaml.safe_load(file) or {}, environment))
        json.dump(config, sys.stdout)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
