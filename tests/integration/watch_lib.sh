# Helpers for the watch integration tests (sourced after tests/lib.sh).
FIX="$top_srcdir/tests/integration/openpanel"
MARK=0

# A daemon config watching $T/root plus bind and mail folders in $T.
watch_config() {
	write_config "$@"
	mkdir -p "$T/bind/zones" "$T/mail/config"
	: > "$T/bind/named.conf.local"
	sed -i "s|^watch_extra: \[\]|watch_extra: [\"$T/bind/zones\", \"$T/bind/named.conf.local\", \"$T/mail/config\"]|" \
		"$T/ophookd.yaml"
}

nlines() { if [ -f "$T/events.log" ]; then wc -l < "$T/events.log"; else echo 0; fi; }
# "type subject" of each event after line $1
ev_since() {
	tail -n +$(( $1 + 1 )) "$T/events.log" 2>/dev/null |
		jq -r '[.type, .subject] | join(" ")'
}
# field FIELD of the last event of type TYPE
field_of() {
	jq -r --arg t "$1" "select(.type == \$t) | .$2" "$T/events.log" | tail -n 1
}
_have_lines() { [ "$(nlines)" -ge "$1" ]; }
# expect NAME WANT...: the events after MARK are exactly WANT (any order
# across subjects; one "type subject" per argument; none: no argument)
expect() {
	_name=$1; shift
	_want=$(printf '%s\n' "$@" | grep . | sort)
	_n=$(printf '%s\n' "$@" | grep -c .)
	wait_for 15 _have_lines $((MARK + _n))
	sleep 0.3 # room for an unexpected extra event to show up
	_end=$(nlines)
	_got=$(ev_since "$MARK" | head -n $((_end - MARK)) | sort)
	is "$_got" "$_want" "$_name"
	MARK=$_end
}
# Write like Caddy's file storage: temp file in the folder, then rename.
_put_n=0
caddy_put() {
	_put_n=$((_put_n + 1))
	_tmp="$(dirname "$2")/.$(basename "$2").$$$_put_n"
	cp "$1" "$_tmp" && mv -f "$_tmp" "$2"
}
# A self-signed certificate for $1 with serial $2 into $3 (crt) $4 (key).
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$4" -out "$3" -days 90 -subj "/CN=$1" \
		-addext "subjectAltName=DNS:$1,DNS:www.$1" -set_serial "$2" \
		>/dev/null 2>&1
}
