"""`python -m local.moto_ext --host 127.0.0.1 --port PORT`: see local/moto_ext/__init__.py."""

from local.moto_ext.server import main

main()
