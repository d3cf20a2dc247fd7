"""llmplan: plan LLM pretraining from data (tokens, bytes per language, GPU-hours, days, cost,
memory, loss) with intervals. Domain logic only: nothing here imports Prefect."""

__version__ = "0.1.0"
