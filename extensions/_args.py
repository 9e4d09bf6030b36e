"""The blocks' argument contract, in one place.

Invalid hyperparameters raise ``ValueError("<Block>: <arg> must be <allowed>, got <value>")`` at construction,
never a TypeError or OverflowError: ints are ints (not bools, ``True == 1``), flags are bools, real numbers
are finite, and channel counts, derived widths and counts of parts are at most ``MAX_WIDTH`` (2**16), checked
before any ``int()`` of a derived width. Each block's constructor calls one function here and then reads as the
network it builds; the functions return the derived widths the block needs.
"""

from __future__ import annotations

import math

MAX_WIDTH = 2 ** 16  # sanity bound on channel counts, derived widths and counts of parts (n, scale, radix, ...)


# -------------------------------------------------------------------------------------------------- primitives
def check(ok: bool, block: str, arg: str, value, allowed: str) -> None:
    """Raise the documented construction error: ``<block>: <arg> must be <allowed>, got <value>``."""
    if not ok:
        try:
            shown = repr(value)
        except ValueError:  # an int past sys.get_int_max_str_digits()
            shown = f'an int of {value.bit_length()} bits'
        raise ValueError(f'{block}: {arg} must be {allowed}, got {shown}')


def is_int(v) -> bool:
    """An int, not a bool (``True == 1`` would otherwise pass as 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_real(v) -> bool:
    """A finite real number: an int or float, not a bool; an int beyond the float range is not finite."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def scaled(c: int, x, d: int) -> float:
    """``c * x / d`` for a channel count ``c`` and a finite number ``x``, exactly as written; ``inf`` where the
    result leaves the float range. Compared with the limits before any ``int()`` of it."""
    try:
        return c * x / d
    except OverflowError:
        return math.inf


def shown(w: float):
    """A derived width for an error message: ``floor(w)``, or ``w`` itself when it is too large to be one."""
    return math.floor(w) if w < 2 ** 53 else w


def flag(block: str, arg: str, value) -> None:
    check(isinstance(value, bool), block, arg, value, 'True or False')


def int_in(block: str, arg: str, value, lo: int = 1, hi: int = MAX_WIDTH) -> None:
    check(is_int(value) and lo <= value <= hi, block, arg, value, f'an int in [{lo}, {hi}]')


def ratio(block: str, arg: str, value, zero_ok: bool = False) -> None:
    """A float in (0, 1], or in [0, 1) when ``zero_ok`` (a drop probability)."""
    ok = is_real(value) and (0.0 <= value < 1.0 if zero_ok else 0.0 < value <= 1.0)
    check(ok, block, arg, value, 'a float in [0, 1)' if zero_ok else 'a float in (0, 1]')


def common(block: str, c1, c2, e, stride, stride_name: str = 'stride') -> int:
    """Checks shared by every block; returns the hidden width ``c_ = int(c2 * e)``."""
    check(is_int(c1) and 1 <= c1 <= MAX_WIDTH, block, 'c1', c1, f'a positive int <= {MAX_WIDTH}')
    check(is_int(c2) and 1 <= c2 <= MAX_WIDTH, block, 'c2', c2, f'a positive int <= {MAX_WIDTH}')
    check(is_real(e) and e > 0, block, 'e', e, 'a finite number > 0')
    check(is_int(stride) and stride in (1, 2), block, stride_name, stride, '1 or 2')
    x = c2 * e  # an int, or a float (inf past the float range): compared before int()
    check(x >= 1, block, 'e', e, f'large enough that int(c2 * e) >= 1 (c2={c2})')
    check(x < MAX_WIDTH + 1, block, 'e', e, f'small enough that int(c2 * e) <= {MAX_WIDTH} (c2={c2})')
    return int(x)


# ------------------------------------------------------------------------------------------------ per block
def bottle2neck(c1, c2, shortcut, e, stride, base_width, scale, stage, g) -> int:
    """Res2Net bottleneck; returns the branch width ``floor(c_ * base_width / 64)``."""
    name = 'Bottle2neck'
    c_ = common(name, c1, c2, e, stride)
    flag(name, 'shortcut', shortcut)
    int_in(name, 'scale', scale, 2)
    check(is_real(base_width) and base_width > 0, name, 'base_width', base_width, 'a finite number > 0')
    w = scaled(c_, base_width, 64)  # width before floor(); inf past the float range
    check(w >= 1, name, 'width', shown(w), f'>= 1: width = floor(c_ * base_width / 64) with c_={c_}, '
          f'base_width={base_width}; raise base_width or c2*e')
    hi = MAX_WIDTH // scale  # conv1 has width*scale output channels
    check(w < hi + 1, name, 'width', shown(w), f'<= {MAX_WIDTH} // scale = {hi}: width = floor(c_ * '
          f'base_width / 64) with c_={c_}, base_width={base_width}; lower base_width or c2*e')
    width = int(math.floor(w))
    check(is_int(g) and g >= 1 and width % g == 0, name, 'g', g, f'a positive int dividing width={width}')
    check(stage is None or isinstance(stage, bool), name, 'stage', stage, 'None, True or False')
    # a normal block adds y_{i-1} (strided) to x_i (not strided): only a stage block can carry the stride
    check(stage is not False or stride == 1, name, 'stage', stage, 'True (or None) when stride > 1')
    return width


def split_attention(c1, c2, k, s, g, radix, reduction, min_inter) -> int:
    """ResNeSt split-attention conv; returns the attention width ``max(c1*radix // reduction, min_inter)``."""
    name = 'SplitAttention'
    common(name, c1, c2, 1.0, s, 's')
    check(is_int(k) and 1 <= k <= MAX_WIDTH and k % 2 == 1, name, 'k', k, f'an odd int in [1, {MAX_WIDTH}]')
    check(is_int(radix) and 1 <= radix <= MAX_WIDTH // c2, name, 'radix', radix,
          f'an int in [1, {MAX_WIDTH // c2}] (c2 * radix <= {MAX_WIDTH}, c2={c2})')
    check(is_int(g) and g >= 1, name, 'g', g, 'an int >= 1')
    check(c1 % (g * radix) == 0, name, 'c1', c1, f'divisible by g*radix = {g * radix}')
    check(c2 % g == 0, name, 'c2', c2, f'divisible by g = {g}')
    check(is_int(reduction) and reduction >= 1, name, 'reduction', reduction, 'an int >= 1')
    int_in(name, 'min_inter', min_inter)
    inter = max(c1 * radix // reduction, min_inter)
    check(inter <= MAX_WIDTH, name, 'inter', inter, f'<= {MAX_WIDTH}: inter = max(c1*radix // reduction, '
          f'min_inter) with c1={c1}, radix={radix}, reduction={reduction}; raise reduction')
    check(inter % g == 0, name, 'g', g, f'a divisor of inter = max(c1*radix//reduction, min_inter) = {inter}')
    return inter


def resnest_bottleneck(c1, c2, shortcut, e, stride, radix, cardinality, bottleneck_width, avd, avd_first,
                       reduction) -> int:
    """ResNeSt bottleneck; returns ``group_width = int(c_ * bottleneck_width / 64) * cardinality``."""
    name = 'ResNeStBottleneck'
    c_ = common(name, c1, c2, e, stride)
    flag(name, 'shortcut', shortcut)
    int_in(name, 'radix', radix)
    int_in(name, 'cardinality', cardinality)
    check(is_real(bottleneck_width) and bottleneck_width > 0, name, 'bottleneck_width', bottleneck_width,
          'a finite number > 0')
    flag(name, 'avd', avd)
    flag(name, 'avd_first', avd_first)
    check(is_int(reduction) and reduction >= 1, name, 'reduction', reduction, 'an int >= 1')
    b = scaled(c_, bottleneck_width, 64)  # width per group before int(); inf past the float range
    hi = MAX_WIDTH // (cardinality * radix)  # the split attention's conv has group_width*radix channels
    check(b < hi + 1, name, 'group_width', shown(b) * cardinality,
          f'<= {hi * cardinality} (group_width * radix <= {MAX_WIDTH}; group_width = int(c_ * '
          f'bottleneck_width / 64) * cardinality, c_={c_}); lower c2, e, bottleneck_width, radix or cardinality')
    gw = int(b) * cardinality
    check(gw >= 1 and gw % (cardinality * radix) == 0, name, 'group_width', gw,
          f'>= 1 and divisible by cardinality*radix = {cardinality * radix} (group_width = '
          f'int(c_ * bottleneck_width / 64) * cardinality, c_={c_}); change c2, e, radix or cardinality')
    inter = max(gw * radix // reduction, 32)  # SplitAttention's inter (its default min_inter=32), grouped
    check(inter % cardinality == 0, name, 'cardinality', cardinality,
          f'a divisor of the split attention\'s inter = max(group_width*radix // reduction, 32) = {inter} '
          f'(group_width={gw}, radix={radix}, reduction={reduction})')
    return gw


def se_resnetd_bottleneck(c1, c2, shortcut, e, stride, se_ratio, drop_path, g, name='SEResNetDBottleneck',
                          stride_name='stride') -> int:
    """SE-ResNet-D bottleneck (and ResNetDDown, under its own name); returns the hidden width ``c_``."""
    c_ = common(name, c1, c2, e, stride, stride_name)
    flag(name, 'shortcut', shortcut)
    ratio(name, 'se_ratio', se_ratio)
    ratio(name, 'drop_path', drop_path, zero_ok=True)
    check(is_int(g) and g >= 1 and c_ % g == 0, name, 'g', g, f'a positive int dividing c_={c_}')
    return c_


def deep_stem(c1, c2, s, c_) -> int:
    """ResNet-C deep stem; returns the width of its first two convs (``c2 // 2`` by default)."""
    common('DeepStem', c1, c2, 1.0, s, 's')
    c_ = max(1, c2 // 2) if c_ is None else c_
    check(is_int(c_) and 1 <= c_ <= MAX_WIDTH, 'DeepStem', 'c_', c_, f'None or a positive int <= {MAX_WIDTH}')
    return c_


def c3(name, c1, c2, n, shortcut, e) -> int:
    """A C3 variant's own arguments; returns its hidden width ``c_ = int(c2 * e)``."""
    int_in(name, 'n', n)
    flag(name, 'shortcut', shortcut)
    return common(name, c1, c2, e, 1)
