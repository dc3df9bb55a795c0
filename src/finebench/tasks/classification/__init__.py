"""Classification: one label per example; accuracy ranks (higher is better).

objective.py: cross-entropy, the metrics of the confusion matrix, confusion.csv / .svg and predictions.csv (one row
per test example) per run. metrics.py: accuracy, mean class accuracy, macro-F1, top-5. tables.py: its leaderboard
(chance and majority class in the heading; the intervals over test examples and paired tests read predictions.csv),
costs, families, average ranks across tasks, published references.
"""

from finebench.tasks.registry import Metric, TaskType, register

TASK = register(TaskType(
    name="classification",
    title="classification",
    metrics=(
        Metric("test_accuracy", "test acc %", "%", fmt=".1f", scale=100, primary=True),
        Metric("test_mean_class_accuracy", "class-avg acc %", "%", fmt=".1f", scale=100),
        Metric("test_macro_f1", "macro-F1 %", "%", fmt=".1f", scale=100),
        Metric("test_top5", "top-5 %", "%", fmt=".1f", scale=100),
    ),
    objective="finebench.tasks.classification.objective:Classification",
    tables="finebench.tasks.classification.tables:ClassificationTables",
    run_files=("confusion.csv", "predictions.csv"),
    table_files=("leaderboard.csv", "families.csv", "model_ranks.csv", "family_ranks.csv", "references.csv"),
    plot_kinds=("learning_curves", "confusion_best", "pareto"),
    training={"label_smoothing": {"type": "number", "minimum": 0, "maximum": 1,
                                  "description": "Classification: label smoothing of the cross-entropy loss."}},
    training_defaults={"label_smoothing": 0.0},
    hf_head=True,
    hf_input="view",
))
