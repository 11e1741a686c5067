// Package imageio writes generated samples in forms that people and
// numpy can read: image grids and scatter plots encoded as PNG, and
// float32 arrays in the numpy .npy format.
//
// All functions validate their arguments and return errors rather than
// panicking on bad input. ReadNPY in particular is safe to use on
// untrusted data: it bounds the header it will read and grows its output
// only as data actually arrives, so a malicious header cannot make it
// allocate more memory than the input contains.
package imageio
