# boot.py: runs first at every reset. Keep it minimal: the lock starts in main.py.
import sys

if "/lib" not in sys.path:
    sys.path.append("/lib")
