"""``python -m bloodssl.deploy``: see ``bloodssl.deploy.cli``."""

from bloodssl.deploy.cli import main

main()
