"""Graph models: a DAG of tensor ops with named parameter tensors, lowered to the scalar graph.

See `graph` (the structure and the `Model`), `build` (building one in Python), `lower` (to scalars).
"""

from derive.model.build import ModelBuilder, Ref
from derive.model.graph import Leaf, Model, OpNode, Structure
from derive.model.lower import LoweredGraph, lower

__all__ = ["Leaf", "LoweredGraph", "Model", "ModelBuilder", "OpNode", "Ref", "Structure", "lower"]
