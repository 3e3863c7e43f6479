"""Identifiers: mosaik's rule for network, stream and group-key names."""

import mosaik

# --8<-- [start:ids]
network = mosaik.id_of("my-app")  # 32 bytes: blake3 of the UTF-8 name
print(len(network), network.hex() == mosaik.id_of(network.hex()).hex())  # 32 True
print(mosaik.id_of("alloc::string::String").hex()[:16])  # 3b5a1dd4d2c82bee: a Rust String stream
# --8<-- [end:ids]
