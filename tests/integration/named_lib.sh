# Shared by the integration tests that run several named instances
# (bind9_secondary.sh, cluster_dns.sh): sourced after tests/lib.sh.
# named's NOTIFY and SOA query pacing is raised to NAMED_RATE (default
# 1000/s; named's own default is 20/s), for bursts of zones.

# start_named NAME: named for node NAME in $T/NAME, DNS port $DNS_<NAME>,
# rndc port $RNDC_<NAME> (bind9.sh's setup).
start_named() {
	_n=$1
	_dns=$(eval echo "\$DNS_$_n")
	_rndc=$(eval echo "\$RNDC_$_n")
	mkdir -p "$T/$_n/named" "$T/$_n/zones" "$T/$_n/secondary"
	: > "$T/$_n/named.conf.local"
	rndc-confgen -a -A hmac-sha256 -c "$T/$_n/rndc.key" -k rndc-key >/dev/null 2>&1 ||
		skip_all "rndc-confgen -a failed"
	cat > "$T/$_n/named.conf" <<EOF
include "$T/$_n/rndc.key";
options {
	directory "$T/$_n/named";
	listen-on port $_dns { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "$T/$_n/named/named.pid";
	session-keyfile "$T/$_n/named/session.key";
	managed-keys-directory "$T/$_n/named";
	allow-new-zones yes;
	recursion no;
	dnssec-validation no;
	notify-source 127.0.0.1;
	transfer-source 127.0.0.1;
	// bursts of zones: named paces NOTIFY and SOA queries at 20/s by default
	notify-rate ${NAMED_RATE:-1000};
	startup-notify-rate ${NAMED_RATE:-1000};
	serial-query-rate ${NAMED_RATE:-1000};
};
controls {
	inet 127.0.0.1 port $_rndc allow { 127.0.0.1; } keys { "rndc-key"; };
};
include "$T/$_n/named.conf.local";
EOF
	named -g -c "$T/$_n/named.conf" >"$T/$_n/named.log" 2>&1 &
	cleanup_pid $!
	if ! wait_for 30 rndc -s 127.0.0.1 -p "$_rndc" -k "$T/$_n/rndc.key" status; then
		tail -n 20 "$T/$_n/named.log" | sed "s/^/# named $_n: /"
		echo "Bail out! named $_n did not come up"
		exit 1
	fi
}
