"""Named layout of the engine's flat arrays: jump-channel codes in events, the columns of
the packed block table and of the local-channel rows, the trajectory state columns, the
trajectory status codes and the instrument codes."""

from __future__ import annotations

from .. import dicke
from ..model import IN_BLOCK_CHANNELS

LOCAL_CHANNELS = tuple(dicke.LOCAL_PROCESSES)  # dephasing, relaxation: move j by -1, 0, +1
LOSS_CHANNELS = ("lost_down", "lost_up")
#: Channel codes in events: in-block jumps, local jumps, then the two spin-loss outcomes.
CHANNELS = IN_BLOCK_CHANNELS + LOCAL_CHANNELS + LOSS_CHANNELS
LOCAL_CODE = len(IN_BLOCK_CHANNELS)
LOSS_CODE = LOCAL_CODE + len(LOCAL_CHANNELS)

# Columns of the packed block table (int64).
B_N, B_TWO_J, B_D0, B_D1, B_CH, B_NCH, B_LOSS_MINUS, B_LOSS_PLUS, B_LOC, B_NLOC = range(10)
# Local-channel rows (int64): channel code, target block, target 2j', index offset.
L_CODE, L_TARGET, L_TWO_JP, L_OFFSET = range(4)
NO_BLOCK, IMPOSSIBLE = -1, -2
# Trajectory state columns: floats and ints.
T_TIME, T_U, T_NEXT_POISSON = range(3)
I_BLOCK, I_MASK, I_SAMPLE, I_SCRIPT, I_STATUS, I_NEV, I_NEED_N, I_NEED_TWO_J, I_MEAS = range(9)
FRESH, DONE, NEED_BLOCK, BUFFER_FULL = 0, 1, 2, 3
#: S_y instruments (scenario.INSTRUMENTS): codes in the kernels.
NO_INSTRUMENT, PROJECTIVE, WEAK, COPIES = range(4)
