"""Label-efficient blood-cell classification on BloodMNIST."""
