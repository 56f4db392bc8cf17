"""``python -m bloodssl.data``: what ``make data`` runs."""

from bloodssl.data.medmnist import main

main()
