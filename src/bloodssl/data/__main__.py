"""``python -m bloodssl.data``: what ``make data`` runs."""

from bloodssl.data.fetching import main

main()
