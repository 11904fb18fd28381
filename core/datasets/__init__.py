"""Built-in datasets: the embedded synthetic default and real PTB-XL / MIT-BIH loaders."""
