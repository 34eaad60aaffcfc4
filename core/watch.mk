# core/watch: inotify watcher, classifier, snapshot and reconcile.
core_libophookcore_la_SOURCES += core/watch.c core/watch.h \
	core/classify.c core/classify.h \
	core/snapshot.c core/snapshot.h
