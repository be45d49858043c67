"""import_diff.py SUPERVISORD_CONF PGWAKE_CONF: compares what supervisord
itself (Debian's supervisor package, its own parser) makes of each
[program:x] -- argv and environment -- with what the pgwake configuration
written by `pgwake import supervisord` gives, read back the way pgwake reads
it (continuation lines joined with a space, the command split by POSIX shell
rules, the environment list split at commas outside double quotes). Exit 0
when every program matches, 1 with the differences, 77 without supervisor.
"""
import os
import re
import shlex
import sys

try:
    import supervisor.options as so
except ImportError:
    sys.exit(77)

# Users and log folders of the samples need not exist on this machine.
so.name_to_uid = lambda user: 1000
so.logfile_name = lambda value: None


def supervisord_view(path):
    opts = so.ServerOptions()
    opts.here = os.path.dirname(os.path.abspath(path))
    opts.environ_expansions = {"ENV_%s" % k: v for k, v in os.environ.items()}
    parser = so.UnhosedConfigParser()
    parser.expansions = opts.environ_expansions
    parser.read(path)
    view = {}
    for section in parser.sections():
        if not section.startswith("program:"):
            continue
        configs = opts.processes_from_section(parser, section, section.split(":", 1)[1])
        first = configs[0]  # pgwake runs the first process's command for every worker
        view[section] = (shlex.split(first.command), dict(first.environment or {}))
    return view


def env_list(value):
    """pgwake's env_list_split."""
    items, cur, quoted, keep, i = [], "", False, 0, 0
    while i <= len(value):
        c = value[i] if i < len(value) else None
        if c is None or (c == "," and not quoted):
            items.append(cur[:keep])
            cur, keep = "", 0
        elif c == '"':
            quoted = not quoted
            keep = len(cur)
        else:
            if quoted and c == "\\" and i + 1 < len(value) and value[i + 1] in '"\\':
                i += 1
                c = value[i]
            if cur or quoted or c not in " \t":
                cur += c
            if quoted or c not in " \t":
                keep = len(cur)
        i += 1
    return dict(item.split("=", 1) for item in items if item)


def pgwake_view(path):
    view, source, key = {}, None, None
    values = {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = re.match(r"; from \[(program:.*)\], line \d+$", line)
        if m:
            source, values = m.group(1), {}
            view[source] = values
            continue
        if not line or line.lstrip().startswith(";") or line.startswith("["):
            continue
        if line[0] in " \t":
            values[key] += " " + line.strip()
        else:
            key, _, value = line.partition(" = ")
            values[key] = value
    out = {}
    for source, values in view.items():
        out[source] = (shlex.split(values["command"]), env_list(values.get("environment", "")))
    return out


def main():
    want, got = supervisord_view(sys.argv[1]), pgwake_view(sys.argv[2])
    text = open(sys.argv[2], encoding="utf-8").read().replace("\n; ", " ")
    bad = 0
    for section, (argv, env) in want.items():
        if section not in got:
            print("%s: no stage" % section)
            bad += 1
            continue
        if got[section][0] != argv:
            print("%s: argv %r, supervisord %r" % (section, got[section][0], argv))
            bad += 1
        # a variable pgwake cannot hold is noted instead: compare what it kept
        for k, v in got[section][1].items():
            if env.get(k) != v:
                print("%s: %s=%r, supervisord %r" % (section, k, v, env.get(k)))
                bad += 1
        for k in env:
            if k not in got[section][1] and "environment: %s not carried over" % k not in text:
                print("%s: %s neither carried over nor noted" % (section, k))
                bad += 1
    print("%d programs compared, %d differences" % (len(want), bad))
    sys.exit(1 if bad else 0)


main()
