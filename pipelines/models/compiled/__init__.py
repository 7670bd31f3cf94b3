"""Models on the compiled core: state in numpy arrays, the prequential loop in numba kernels,
snapshots as named arrays (see DESIGN.md, "The compiled core")."""

import experts._jit_cache  # noqa: F401 - before any compiled kernel is defined
