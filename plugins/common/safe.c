/* The one definition of <ophook/safe.h> for the in-tree plugins (in
 * libplugcommon.la), compiled like an out-of-tree plugin would do it. */
#define _GNU_SOURCE
#define OPHOOK_SAFE_IMPLEMENTATION
#include <ophook/safe.h>
