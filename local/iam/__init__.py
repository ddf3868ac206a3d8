"""IAM proven from traffic: the policies of the templates rendered for the local stack
(policies.py), the recorded calls evaluated against them (evaluate.py, principalmapper's local
policy simulation), granted vs used actions per principal (usage.py), and parliament over every
policy of the templates (lint.py)."""

import collections
import collections.abc

# principalmapper 1.1.5 imports Mapping / MutableMapping from `collections`, gone since Python
# 3.10 (nccgroup/PMapper, case_insensitive_dict.py); the abc module holds the same classes.
for _name in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))
