# plugins/bind9
