"""Image super-resolution: an HR image from its bicubic-downscaled LR input; PSNR on Y ranks (higher is better).

objective.py: L1 (or MSE, Charbonnier) loss, PSNR / SSIM on Y, per_image.csv and the report's example crop per run.
metrics.py: PSNR / SSIM the literature's way (BT.601 Y, ``scale`` px shaved, a grey image on its own values).
tables.py: its leaderboard with the bicubic baseline as a row, each model's gain over bicubic, FLOPs per output
pixel; a task scored on several test sets is ranked per set (``task@set``).
"""

from finebench.tasks.registry import Metric, TaskType, register

TASK = register(TaskType(
    name="superres",
    title="super-resolution",
    metrics=(
        Metric("test_psnr", "PSNR dB (Y)", "dB", fmt=".2f", primary=True),
        Metric("test_ssim", "SSIM (Y)", "", fmt=".4f", interval=True),
    ),
    objective="finebench.tasks.superres.objective:SuperResolution",
    tables="finebench.tasks.superres.tables:SuperResolutionTables",
    run_files=("per_image.csv", "examples.npz"),
    table_files=("leaderboard_sr.csv", "families_sr.csv", "family_ranks_sr.csv"),
    plot_kinds=("learning_curves", "sr_examples", "pareto"),
    training={"loss": {"type": "string", "enum": ["l1", "mse", "charbonnier"],
                       "description": "Super-resolution: the training loss (default l1)."}},
))
