/*
 * activations.cl - what the other kernel files share: how a product's result lands in its
 * output (the epilogue), the SiLU of the feed-forward network, and the work-group reductions.
 * It sorts first among the kernel files, so every later file of the program sees these.
 *
 * Epilogues, the mode argument of every product kernel, for output row r of n_out:
 *   L2C_STORE:      y[r] = dot(w_r, x)
 *   L2C_ACCUMULATE: y[r] = y[r] + dot(w_r, x)               (the residual connection)
 *   L2C_SWIGLU:     y[r] = silu(dot(w_r, x)) * dot(w_{r + n_out}, x)
 *                   (w holds w1's rows, then w3's: one product and the gate in one pass)
 * math: silu(v) = v * (1 / (1 + exp(-v))), as run.c computes it
 */

#define L2C_STORE      0
#define L2C_ACCUMULATE 1
#define L2C_SWIGLU     2

float l2c_silu(float v)
{
    return v * (1.0f / (1.0f + exp(-v)));
}

/* Writes a finished row: value is dot(w_r, x), gate is dot(w_{r + n_out}, x) for L2C_SWIGLU. */
void l2c_epilogue(__global float *y, int mode, float value, float gate)
{
    if (mode == L2C_ACCUMULATE) {
        *y = *y + value;
    } else if (mode == L2C_SWIGLU) {
        *y = l2c_silu(value) * gate;
    } else {
        *y = value;
    }
}

/* The sum of every work-item's value; all work-items must call it. */
float l2c_group_sum(float value, __local float *partial)
{
    int j = get_local_id(0);
    int L = get_local_size(0);
    partial[j] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = L / 2; stride > 0; stride /= 2) {
        if (j < stride) {
            partial[j] += partial[j + stride];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float sum = partial[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return sum;
}

/* The largest of every work-item's value; all work-items must call it. */
float l2c_group_max(float value, __local float *partial)
{
    int j = get_local_id(0);
    int L = get_local_size(0);
    partial[j] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = L / 2; stride > 0; stride /= 2) {
        if (j < stride) {
            partial[j] = fmax(partial[j], partial[j + stride]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float result = partial[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return result;
}

/* The sum of the values of each team of `team` neighbouring work-items (team a power of two
 * dividing the local size), returned to every member; all work-items must call it. */
float l2c_team_sum(float value, __local float *partial, int team)
{
    int j = get_local_id(0);
    int lane = j & (team - 1);
    partial[j] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = team / 2; stride > 0; stride /= 2) {
        if (lane < stride) {
            partial[j] += partial[j + stride];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float sum = partial[j - lane];
    barrier(CLK_LOCAL_MEM_FENCE);
    return sum;
}
