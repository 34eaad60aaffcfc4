# plugins/caddy
