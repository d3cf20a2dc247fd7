"""The physics of a training step, as numpy functions that broadcast over rows × candidate layouts.

`shapes` turns a size into a transformer shape (layers, hidden, FFN, heads, KV heads, vocabulary,
experts) by a rule fitted to public configurations, and back into parameter counts; `flops` counts
forward + backward FLOPs per token per part (dense GEMMs, expert GEMMs, logits, attention) under
Megatron's MFU convention, with recomputation's hardware FLOPs beside them; `comm` prices every
parallel dimension's collectives with the NCCL tests' bus-bandwidth factors over the link each
group actually uses; `memory` sums model states (ZeRO / distributed optimizer, experts sharded
once), activations (Korthikanti et al. 2022) and the logits buffer per GPU. Nothing here is fitted
or learned: the efficiencies that turn these counts into seconds live in the step model.
"""
