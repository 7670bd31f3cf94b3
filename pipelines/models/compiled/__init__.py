"""Models on the compiled core: state in numpy arrays, the prequential loop in numba kernels,
snapshots as named arrays (see DESIGN.md, "The compiled core")."""
