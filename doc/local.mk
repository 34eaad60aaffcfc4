# doc: man pages (ophook-lua.7 is the hooks subsystem's, in core/hooks.mk)
dist_man8_MANS = doc/ophookd.8 doc/ophookctl.8
dist_man5_MANS = doc/ophookd.yaml.5
dist_man3_MANS = doc/ophook-plugin.3
