/* `kinesis-telemetry-extension --version`: the extension's version and those
 * of the libraries linked into the binary, so that users and their security
 * scanners can tell what a layer contains (as libcurl's curl_version() does). */
#ifndef KTE_VERSION_H
#define KTE_VERSION_H

#include <stddef.h>
#include <stdio.h>

/* Writes, NUL-terminated and truncated to cap, the lines
 *
 *   kinesis-telemetry-extension <version>
 *   libcurl/<v> <TLS library>/<v> libmicrohttpd/<v> yajl/<v> <libc>/<v>
 *   built from Debian source packages: <name>=<version> ...   (layer builds)
 *
 * and returns the length of the whole text (as snprintf does). The library
 * versions are the ones linked in, asked from each library at run time;
 * musl has no such call, so its version comes from the build. */
size_t kte_version_text(char *buf, size_t cap);

/* kte_version_text() to out; 0, or -1 when writing failed. */
int kte_version_print(FILE *out);

#endif
