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
