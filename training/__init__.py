"""Training for mailfilter: corpora, datasets, pretraining, fine-tuning, evaluation, plots."""
