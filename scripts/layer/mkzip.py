#!/usr/bin/python3
"""Write a reproducible zip: mkzip.py OUT.zip SRC=ARCNAME [SRC=ARCNAME ...]

Entries are written in the order given, each with the fixed timestamp
1980-01-01 00:00:00, Unix mode 0755 for a source file its owner may execute
and 0644 for any other (regular files only), deflate level 9 and no extra
fields, so the same input files (and executable bits) always give the same
bytes. The zip is written next to OUT and renamed into place.
"""

import os
import stat
import sys
import zipfile

DATE_TIME = (1980, 1, 1, 0, 0, 0)
EXEC_MODE = stat.S_IFREG | 0o755
FILE_MODE = stat.S_IFREG | 0o644


def main(argv):
    if len(argv) < 3 or any("=" not in a for a in argv[2:]):
        sys.exit(__doc__)
    out = argv[1]
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w") as z:
        for spec in argv[2:]:
            src, arcname = spec.split("=", 1)
            info = zipfile.ZipInfo(arcname, date_time=DATE_TIME)
            info.create_system = 3  # Unix, so that external_attr holds the mode
            executable = os.stat(src).st_mode & stat.S_IXUSR
            info.external_attr = (EXEC_MODE if executable else FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(src, "rb") as f:
                data = f.read()
            z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv)
