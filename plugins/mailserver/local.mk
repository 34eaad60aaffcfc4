# plugins/mailserver
