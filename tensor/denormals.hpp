#pragma once
// Flush-to-zero for float arithmetic on the CPU, as torch.set_flush_denormal: results below the
// smallest normal float become 0 and such inputs count as 0 (x86's MXCSR FTZ and DAZ bits).
// A subnormal operand costs an x86 core a microcode assist, tens to hundreds of cycles per
// instruction: a DeepShift-PS model whose logits saturate the softmax passes gradients of about
// 1e-38 through its matrix products, and its training step ran 2.3x slower for them. Results
// differ from IEEE arithmetic where a value would have been subnormal (below 1.2e-38), and
// through those values whatever follows from them.
namespace ds {

// Sets the mode on the calling thread and on the threads of its OpenMP pool, as many as the
// larger of the thread count and the core count (threads started later inherit it from the
// thread that starts them). Call it outside parallel regions, before starting other threads
// (each thread has its own mode), as the trainers do. Returns false, changing nothing, where
// the build has no such mode (only x86 builds have it here).
bool set_flush_denormal(bool enabled);

// The calling thread's mode.
bool flush_denormal();

}  // namespace ds
