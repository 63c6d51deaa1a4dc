"""The virtual BLE bench (``kagiya.hil.vble``): Bumble virtual controllers on one link.

* :mod:`.radio` - the shared link: a :class:`bumble.link.LocalLink` plus a TCP endpoint
  that gives every phone that connects its own virtual controller over HCI (H4 framing);
* :mod:`.peripheral` - the lock's BLE chip: a Bumble ``Device`` whose GATT server,
  advertising and connections are driven by the lock's MicroPython ``bluetooth`` shim;
* :mod:`.sidecar` - the process that runs both for one virtual lock;
* ``mpy/bluetooth.py`` - the shim itself (MicroPython code, on the lock's MICROPYPATH only
  in the virtual bench);
* :mod:`.wire` - the small framed protocol between the shim and the sidecar.
"""
