# contrib: quickstart, demo tree, test runner, systemd unit, opencli glue
EXTRA_DIST += contrib/demo/scenario.sh contrib/demo/hooks/demo.lua \
	contrib/demo/tree/caddy/templates/domain.conf \
	contrib/demo/tree/caddy/templates/suspended.conf \
	contrib/demo/tree/caddy/templates/suspended_user.conf \
	contrib/demo/tree/caddy/domains/alice-blog.example.conf \
	contrib/demo/tree/openpanel/conf/openpanel.config \
	contrib/demo/tree/openpanel/core/users/alice/.keep
