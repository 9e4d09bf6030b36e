"""The error a model YAML that cannot be built raises (standard library only: the base imports it first)."""

from __future__ import annotations

__all__ = ['ModelConfigError']


class ModelConfigError(ValueError):
    """A model YAML that cannot be built. ``str(e)`` names the file, the layer index and module (or the header key),
    what is wrong and the fix."""

    def __init__(self, layer, module, problem, fix, yaml_file='', key: str | None = None):
        self.layer, self.module, self.problem, self.fix, self.yaml_file = layer, module, problem, fix, yaml_file
        self.key = key
        super().__init__(str(self))

    def __str__(self):
        where = f'{self.yaml_file}: ' if self.yaml_file else ''
        what = f'key {self.key!r}' if self.key else f'layer {self.layer} ({self.module})'
        return f'{where}{what}: {self.problem}. Fix: {self.fix}'
