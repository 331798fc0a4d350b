"""The hints after the first: ``python -m minigan.exercises check --hint NAME`` prints the next.

Tier 1 is the comment in the stub itself and gives the idea. The tiers here come closer, one
step at a time (``--hint NAME --tier 3`` for the one after), and none of them is the answer:
they name the pieces, the shapes and the trap, and leave the line to the learner. A test holds
every hint (and every stub) free of the lines of minigan's own solutions.
"""

from __future__ import annotations

SCALE = (
    "Two steps: first map 0..255 onto 0..1 (what does the largest pixel become?), then "
    "stretch 0..1 to the width of feature_range and move it to start at its low end.",
    "uint8 arithmetic wraps around at 256: 255 + 1 is 0 in uint8. Make the pixels float32 "
    "(x.astype(...)) before any arithmetic, and check that pixel 255 lands exactly on the high "
    "end.",
)
CONV2D_NAIVE = (
    "Seven loops: over images n, filters f, output rows ho, output columns wo, and inside, "
    "over channels c and kernel rows i and columns j, one multiply-add each. Pad first, so that "
    "no index ever falls outside the array.",
    "The output pixel (ho, wo) sees the window that starts at row S*ho and column S*wo of the "
    "padded input; the stride multiplies the output position, not the kernel offset. The bias "
    "is added once per output pixel, not once per multiply-add.",
)
IM2COL = (
    "Loop over the K*K kernel offsets (i, j) rather than over the windows: for one offset, a "
    "strided slice of the padded input holds that entry of every window at once, shaped "
    "(N, C, H_out, W_out). Where does it belong among the columns (i, j, c)?",
    "Moving the axes to (N, H_out, W_out, K, K, C) before the final reshape puts rows and "
    "columns in the documented order; the failure report names a wrong entry by (n, ho, wo) "
    "and (i, j, c), so you can see which of the two orders is off. col2im walks the same slices "
    "backwards, with += so that overlapping windows add up.",
)
CONV2D_FORWARD = (
    "The whole layer is one matrix product of the windows (im2col) with the filters flattened "
    "in the same (i, j, c) order (weight_matrix), plus the bias on every row.",
    "The product has one row per output pixel (n, ho, wo) and one column per filter: "
    "rows_to_nchw turns it into an image. Keep what backward needs in the cache (the columns, "
    "the weights, the input's shape, stride, padding, and whether there was a bias).",
)
CONV2D_BACKWARD = (
    "Each gradient is again one matrix product with the same two matrices as the forward "
    "pass, transposed: think about which shapes can multiply to (K*K*C, F) and to "
    "(N*H_out*W_out, K*K*C).",
    "The weight gradient comes out in im2col's (i, j, c) row order: weight_from_matrix puts "
    "it back as (F, C, K, K); a plain reshape scrambles it whenever C > 1 and K > 1. The input "
    "gradient goes back through col2im. Honour need_weight_grad and need_input_grad by "
    "returning None for what is not wanted.",
)
CONV_TRANSPOSE2D = (
    "The transposed convolution's forward pass is a convolution's input gradient, and its "
    "input gradient is a convolution's forward pass: reuse what you wrote for conv2d.",
    "Picture the conv2d that maps the output's shape to x's shape with the same weight array: "
    "x plays the role of its output gradient. Its weight gradient (your dw) pairs the windows "
    "of dy with the rows of x.",
)
BATCH_NORM_TRAIN = (
    "Each channel's statistics are taken over every axis but axis 1; per_channel makes a (C,) "
    "vector broadcast against x. The batch variance here is the biased one (divide by m).",
    "For the backward pass, remember that the mean and the variance depend on every x of the "
    "channel: derive dx_hat, then the gradient through the variance, then through the mean, "
    "then dx; or simplify the three terms into one line. Check it on a (3, 1) input by hand.",
)
BATCH_NORM_EVAL = (
    "The same normalisation with the running statistics in place of the batch's: they are "
    "constants, so each channel is an affine map.",
    "The cache must say which mode made it, so that batch_norm_backward takes the affine "
    "map's simple gradient here and the full one in training mode.",
)
RUNNING_STATS = (
    "A blend of the old value and the batch's statistic, weighted by momentum.",
    "The running variance estimates the variance of the whole data set, so it takes the "
    "unbiased batch variance: the biased one times m / (m - 1). Return new arrays.",
)
LEAKY_RELU = (
    "The local derivative is 1 on one side of 0 and the slope on the other: build it once, as "
    "an array shaped like x, and use it in both passes.",
    "Keep float32 float32: a NumPy scalar of x's dtype (x.dtype.type(...)) mixes with x "
    "without promoting it. The backward pass is one multiplication with what the forward pass "
    "saved.",
)
TANH = (
    "The derivative of tanh can be written with tanh(x) itself, so the forward pass's output "
    "is all the backward pass needs.",
    "Differentiate tanh = sinh / cosh with the quotient rule and write the result in terms of "
    "tanh; keep y in the cache.",
)
BCE = (
    "Write log(sigmoid(x)) and log(1 - sigmoid(x)) with exp(-x), and combine the two terms "
    "into one expression per element; then find where it can overflow.",
    "Adding and removing max(x, 0) leaves exp with only arguments <= 0; log1p keeps precision "
    "for tiny arguments. The target may be an array or one number (0.9 with label smoothing): "
    "make it an array of the logits' dtype. The loss is a 0-d array.",
)
ADAM = (
    "'In place' means writing into the arrays you were given (the *=, += and -= operators); "
    "a new local array is invisible to the optimizer.",
    "Check on paper that step_size * m / (sqrt(v) / sqrt_bias2 + eps) equals "
    "lr * m_hat / (sqrt(v_hat) + eps), then update m, then v, then param.",
)
DISCRIMINATOR = (
    "Three stride-2 4x4 convolutions halve 32 to 4 while the channels double from conv_dim; "
    "then one Linear from the flattened 4x4 map to one logit. Batch norm on every convolution "
    "but the first; leaky ReLU with slope 0.2 after each.",
    "A convolution followed by batch norm needs no bias (batch norm removes it). For other "
    "image sizes, keep adding stride-2 blocks until the map is 4x4. The grader names the "
    "first layer that differs from minigan's, with its weight shapes.",
)
GENERATOR = (
    "The Discriminator backwards: a Linear from z to a deep 4x4 map, Reshape, then stride-2 "
    "4x4 transposed convolutions that double the size and halve the channels, down to the "
    "image's channels; ReLU inside, tanh at the end.",
    "Batch norm (and then ReLU) after every layer but the last; the last transposed "
    "convolution keeps its bias and is followed by tanh only. The first map has conv_dim "
    "times 2**(stride-2 layers - 1) channels.",
)
GAN_LOSSES = (
    "Both are the mean binary cross-entropy of D's logits against one number: which number "
    "for real images, which for fakes? Your bce_with_logits kernels (through minigan.ops) do "
    "the work.",
    "Label smoothing lowers only the real target (0.9 instead of 1); the fake target stays 0. "
    "Return the loss and d loss / d logits, which is the kernel's backward with dloss = 1.",
)
D_STEP = (
    "Clear D's gradients, then: real batch through D and its loss; a fake batch from "
    "G(noise(N)) through D and its loss; both gradients into D's parameters; one step of D's "
    "optimizer.",
    "D needs no gradient at its input here: D.backward_params takes the loss's d_logits. "
    "Never call G.backward in this step (G is 'detached'). Return the summed loss and the "
    "mean probabilities sigmoid(logits) of the real and of the fake batch.",
)
G_STEP = (
    "Clear G's gradients, make a fresh fake batch, and score it with the real loss: G wants D "
    "to call its images real (flipped labels, never smoothed).",
    "Only the gradient at D's input is needed: switch D's weight gradients off around "
    "D.backward (requires_grad_), then G.backward carries the image's gradient into G, and "
    "G's optimizer steps.",
)
TRAIN_STEP = (
    "config.d_steps discriminator updates on the same real batch, then one generator update.",
    "Return a StepResult with the numbers of the last D update and the G update.",
)
INCEPTION_SCORE = (
    "For each split: the marginal p(y) is the mean row of that split; the score is exp of the "
    "mean over its rows of KL(p(y|x) || p(y)). Report the mean and the std over the splits.",
    "0 * log(0) must count as 0 (scipy.special.rel_entr does that); the marginal belongs to "
    "each split, not to all the rows; the std is the population one (numpy's default).",
)
FRECHET = (
    "||mu1 - mu2||^2 plus the trace of sigma1 + sigma2 - 2 sqrtm(sigma1 @ sigma2): a matrix "
    "square root, not a square root of each entry.",
    "scipy.linalg.sqrtm may return a complex matrix with tiny imaginary parts: keep the real "
    "part. Identical statistics must give 0; in one dimension the answer is "
    "(m1 - m2)^2 + (s1 - s2)^2.",
)
