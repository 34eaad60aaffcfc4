#!/bin/sh
# The core's layers, from the #include lines (TAP):
#   lib < journal < bus < sources | handlers < daemon
# A file may include headers of its own folder and of the layers below it;
# sources and handlers never include each other; no two subsystems (the
# files named after one: hooks.c, hooks_lua.c, hooks_int.h) include each
# other in a circle.  The checker is first run on two
# small broken trees, which it must refuse, then on core/.
set -u
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d /tmp/ophook-layers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

check() {
	python3 - "$1" <<'EOF'
import os, re, sys
root = sys.argv[1]
rank = {"lib": 0, "journal": 1, "bus": 2, "sources": 3, "handlers": 3,
        "daemon": 4}
where, incs = {}, {}
for d in sorted(os.listdir(root)):
    if d not in rank or not os.path.isdir(os.path.join(root, d)):
        continue
    for f in sorted(os.listdir(os.path.join(root, d))):
        if f.endswith((".c", ".h")):
            where[f] = d
            with open(os.path.join(root, d, f), errors="replace") as fp:
                incs[(d, f)] = [(n + 1, m.group(1)) for n, line in
                                enumerate(fp) for m in
                                [re.match(r'\s*#\s*include\s+"([^"]+)"', line)]
                                if m]
# Circles are looked for between subsystems: a subsystem is the family of
# files named after it (hooks.c, hooks_lua.c, hooks_int.h; journal.c,
# journal_sqlite.c, journal_backend.h), whose parts may share a private
# header and call each other, as Dovecot's lib-lua parts do.  A header with
# no .c that includes none of its family's headers (paneldb_driver.h, the
# interface drivers and the poller share) is a subsystem of its own.
cfiles = {f[:-2] for f in where if f.endswith(".c")}
def module(f):
    name = f.rsplit(".", 1)[0]
    fam = name.split("_")[0]
    if f.endswith(".h") and name not in cfiles and name != fam:
        own = [os.path.basename(h) for _, h in incs.get((where[f], f), [])]
        if not any(h.split("_")[0].split(".")[0] == fam for h in own):
            return name
    return fam
bad = 0
graph = {}
for (d, f), lst in sorted(incs.items()):
    mod = module(f)
    for line, h in lst:
        base = os.path.basename(h)
        if h.startswith("ophook/") or base not in where:
            continue
        hd = where[base]
        if rank[hd] > rank[d] or (rank[hd] == rank[d] and hd != d):
            print("%s/%s:%d: includes %s/%s: layer %s may not include %s"
                  % (d, f, line, hd, base, d, hd))
            bad += 1
        hmod = module(base)
        if hmod != mod:
            graph.setdefault(mod, set()).add(hmod)
# circles between modules
state, stack = {}, []
def visit(m):
    global bad
    state[m] = 1
    stack.append(m)
    for n in sorted(graph.get(m, ())):
        if state.get(n) == 1:
            print("circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            bad += 1
        elif n not in state:
            visit(n)
    stack.pop()
    state[m] = 2
for m in sorted(graph):
    if m not in state:
        visit(m)
sys.exit(1 if bad else 0)
EOF
}

echo "1..3"
# a bus file that includes a handler's header
mkdir -p "$tmp/up/bus" "$tmp/up/handlers"
printf '#include "hooks.h"\n' >"$tmp/up/bus/engine.c"
: >"$tmp/up/handlers/hooks.h"
if out=$(check "$tmp/up") || ! echo "$out" | grep -q 'bus/engine.c:1: includes handlers/hooks.h'; then
	echo "not ok 1 - a layer including one above it is refused: $out"
else
	echo "ok 1 - a layer including one above it is refused"
fi
# two modules of one layer that include each other
mkdir -p "$tmp/circle/bus"
printf '#include "b.h"\n' >"$tmp/circle/bus/a.c"
: >"$tmp/circle/bus/a.h"
printf '#include "a.h"\n' >"$tmp/circle/bus/b.c"
: >"$tmp/circle/bus/b.h"
if out=$(check "$tmp/circle") || ! echo "$out" | grep -q 'circle: a -> b -> a'; then
	echo "not ok 2 - a circle is refused: $out"
else
	echo "ok 2 - a circle is refused"
fi
if out=$(check "$top/core"); then
	echo "ok 3 - core/: every include goes down a layer, no circle"
else
	echo "not ok 3 - core/ breaks the layers:"
	echo "$out" | sed 's/^/# /'
fi
