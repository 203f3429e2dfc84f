"""The study's ground-truth similarity between two windows: grid-cell histograms compared by Kolmogorov-Smirnov.

Two modes share one core:

``seed``
    Reproduces the study's C++ reference to 1e-9, quirks included. Cells are ``ceil(H/N)`` rows by
    ``ceil(W/N)`` columns laid from the top-left corner over the image walked as one row-major array:
    pixel (r, c) of cell (i, j) is flat index ``(i*ch + r) * W + j*cw + c``. A cell that runs past the
    right edge therefore reads the first pixels of the next image row, and a flat index ``>= H*W`` (past
    the last row) reads the value 0, which falls in bin 0. Every cell thus holds exactly ``ch*cw`` pixels.
    Like the reference (``width == 1500 and height == 1300``) it refuses any image that is not 1500 pixels
    wide x 1300 high (numpy shape (1300, 1500)), the geometry of real COMS frames and KMA's files. With
    N = 24 cells are 55 rows x 63 columns: the last cell column (columns 1449..1511) wraps 12 pixels into
    the next row, and the last cell row (rows 1265..1319) reads 20 rows of zeros.
``general``
    Any image size of at least N x N pixels. Row and column boundaries are cut as ``np.array_split`` does
    (the first ``H mod N`` cell rows are one pixel taller), so no cell wraps or reads padding. Cells may
    differ in pixel count by one row or column; CDFs are compared as fractions. Use it for shrunk frames
    (the detector's 375 x 300 planes) and for satellites other than COMS.

A frame's signature is its per-cell cumulative bin counts; everything else is computed from signatures, so
any window pair costs a max-abs-difference reduction over integers (exact: within one cell both CDFs share
the denominator n, so ``max |Ca - Cb| / n`` is the KS statistic with no rounding before the final divide).

This module is the metric's public face; the work lives beside it, one concern each: ``spec`` (grid spec and
signature types), ``binning`` (grey levels and bins), ``signatures`` (a frame's signature from planes or
PNGs), ``compare`` (the compiled kernels and window comparisons), ``files`` (the on-disk signature cache and
the path-level API).
"""

from __future__ import annotations

from satwatch.services.metric.binning import (  # noqa: F401
    _grey_rgb_bin_table,
    _grey_table,
    _rgb_bins,
    _uint8_bin_table,
    bin_values,
    grey_from_rgb,
    rgb_bins,
)
from satwatch.services.metric.compare import (  # noqa: F401
    BLOCK_TILE,
    CHUNK,
    MEMO_MAX_FRAMES,
    SLICE,
    TILE,
    WindowComparison,
    _absdiff,
    _Batch,
    _block_sums,
    _by_compared_length,
    _hi,
    _max_diff_add,
    _max_diff_sum,
    _max_over_bins,
    _one_to_many_equal,
    _pair_sums,
    _pair_sums_memo,
    _pairwise_equal,
    _tiled_pairs,
    _weighted,
    aligned,
    cdf_features,
    cdf_from_signature,
    cell_similarities,
    compare_one_to_many,
    compare_windows,
    latest_frames,
    pairwise_similarity,
    similarity_one_to_many,
    window_signature,
    window_similarity,
)
from satwatch.services.metric.files import (  # noqa: F401
    SignatureCache,
    _frame_signatures_from_paths,
    compare_paths,
    frame_signature_from_paths,
    frame_signatures_from_paths,
    similarity_from_paths,
    window_files,
)
from satwatch.services.metric.signatures import (  # noqa: F401
    _IDENTITY,
    Plane,
    _check_seed_size,
    _cum_dtype,
    _frame_signature_uncached,
    _general_layout,
    _hist_general,
    _hist_seed,
    _plane_from_decoded,
    _read_plane,
    _read_plane_pillow,
    _rgb_plane,
    _signature_from_counts,
    _signature_from_planes,
    frame_signature,
    frame_signature_from_rgb,
    grid_histograms,
    read_reference_grey,
    seed_cell_size,
)
from satwatch.services.metric.spec import (  # noqa: F401
    _ARENA,
    GREY_WEIGHTS,
    LANES,
    SEED_HEIGHT,
    SEED_WIDTH,
    SIGNATURE_VERSION,
    FrameSignature,
    GridSpec,
    ImageSizeError,
    Mode,
    WindowSignature,
    _Arena,
)
