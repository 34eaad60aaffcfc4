# contrib: systemd unit, quickstart, opencli glue
