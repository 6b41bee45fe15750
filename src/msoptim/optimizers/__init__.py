"""One module per optimizer: constructor validation, state layout, and which kernel runs."""
