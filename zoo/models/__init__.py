"""Every zoo model family, one subpackage each; importing this registers every family's presets.

``base.GenerativeModel`` is the class they all inherit: ``flow`` (``FlowModel``:
NF / GLOW, and the NIF and spread families built on it), ``nif``, ``injflow``
(InjFlow and the regularized autoencoders), ``dnf`` (DNF, M-flow, PIE) and
``spread``.
"""

from zoo.models import base, dnf, flow, injflow, nif, spread
from zoo.models.base import GenerativeModel

__all__ = ["GenerativeModel", "base", "dnf", "flow", "injflow", "nif", "spread"]
