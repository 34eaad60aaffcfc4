# plugins/firewall
