"""Pure ML for mailfilter: GPT-2, the classifier, the tokenizer, checkpoints, weight import."""
