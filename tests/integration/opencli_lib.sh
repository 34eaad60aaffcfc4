# Our copy of OpenPanel 2.x's opencli wrapper (/usr/local/bin/opencli),
# written from reading it, not its text (sourced by guard.sh and
# guard_container.sh):
#   opencli_wrapper FILE SCRIPTS_DIR HOOKS_DIR
# writes it to FILE.  Like the real one: `opencli [-x] CMD ARGS` runs the pre
# hook HOOKS_DIR/pre_CMD.sh (or pre_CMD) as `bash HOOK ARGS` with stdin,
# stdout and stderr on /dev/null and its exit status ignored, then
# `bash SCRIPTS_DIR/<CMD with - as />.sh ARGS`, then the post hook in the
# background.
opencli_wrapper() {
	printf '#!/bin/bash\nSCRIPTS_DIR="%s"\nHOOKS_DIR="%s"\n' "$2" "$3" > "$1"
	cat >> "$1" <<'EOF'
debug_flag=""
run_hook() {
	local type="$1" command="$2"; shift 2
	local base="${HOOKS_DIR}/${type}_${command}" file=""
	if [[ -f "${base}.sh" ]]; then file="${base}.sh"
	elif [[ -f "${base}" ]]; then file="${base}"
	else return 0; fi
	case "$type" in
	pre) bash ${debug_flag:+"$debug_flag"} "$file" "$@" </dev/null >/dev/null 2>&1 ;;
	post) nohup bash "$file" "$@" </dev/null >/dev/null 2>&1 & ;;
	esac
}
[[ "$1" == "-x" ]] && { debug_flag="-x"; shift; }
command="$1"; shift
script="${SCRIPTS_DIR}/${command//-//}.sh"
[[ -f "$script" ]] || { echo "Error: Command '$command' not found." >&2; exit 1; }
run_hook pre "$command" "$@"
bash ${debug_flag:+"$debug_flag"} "$script" "$@"
run_hook post "$command" "$@"
EOF
	chmod 755 "$1"
}

# guard_allow_deny RUN RAN LABEL: with the guard installed, RUN (a function
# that runs opencli and sets $rc, $T/out, $T/err) lets domains-add shop.com
# through (its script writes RAN) and stops domains-add shop.example (a Lua
# pre hook denies it) before its script, with the reason on stderr.
guard_allow_deny() {
	_run=$1 _ran=$2 _l=$3
	"$_run" domains-add shop.com bob
	is "$rc" 0 "${_l}an allowed command exits 0"
	ok "$(grep -q 'domains/add shop.com bob' "$_ran"; echo $?)" "${_l}its script ran"
	is "$(cat "$T/out")" "domains/add done" "${_l}its output reaches the caller"
	: > "$_ran"
	"$_run" domains-add shop.example bob
	ok "$([ "$rc" -ne 0 ]; echo $?)" "${_l}a denied command fails (exit $rc)"
	ok "$([ ! -s "$_ran" ]; echo $?)" "${_l}the denied command's script did not run"
	ok "$(grep -q 'opencli domains-add refused: domain.add: shop.example is reserved' "$T/err"; echo $?)" \
		"${_l}the reason reaches the caller's stderr"
	ok "$(grep -q "$(printf '\033')" "$T/err"; [ $? -ne 0 ]; echo $?)" \
		"${_l}no control character of the reason reaches the caller raw"
}
