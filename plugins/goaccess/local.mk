# plugins/goaccess
