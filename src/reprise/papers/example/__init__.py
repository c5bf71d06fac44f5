"""A tiny built-in example paper (softmax regression on the embedded digits).

It stands in until real papers land, so the workflow, the report and DVC have one paper to
run end to end. Delete it once a real paper exists.
"""

METRICS = {
    "test_accuracy": "accuracy on the held-out digits test split",
    "final_train_loss": "training cross-entropy after the last epoch",
}
