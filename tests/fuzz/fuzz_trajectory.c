/* fuzz_trajectory.c -- golden trajectory files: ow_cfg_load_string of the input, then
 * ow_trajectory_new and its steps (at most 16, so that a long file stays quick). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    ow_error err;
    ow_cfg *golden = NULL;
    ow_trajectory *traj = NULL;
    if (ow_cfg_load_string(text, "fuzz.json", &golden, &err) == OW_OK &&
        ow_trajectory_new(golden, &traj, &err) == OW_OK) {
        int n = ow_trajectory_get_num_steps(traj);
        for (int k = 0; k < n && k < 16; k++)
            if (ow_trajectory_step(traj, &err) != OW_OK)
                break;
        ow_trajectory_stats stats;
        ow_trajectory_get_stats(traj, &stats);
    }
    ow_trajectory_free(traj);
    ow_cfg_free(golden);
    free(text);
    return 0;
}
