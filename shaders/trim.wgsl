// trim: no kernel of its own. The image is read back, the rectangle to keep
// found on the host by the same code as on the CPU (src/ops/trim.rs), and
// cut out by the crop kernel.
