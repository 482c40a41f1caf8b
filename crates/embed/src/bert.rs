//! The BERT encoder (post-LayerNorm, GELU, absolute positions), f32 on the CPU, one sequence
//! at a time (no padding, so no attention mask).
#![allow(clippy::many_single_char_names, reason = "the names of the math: x, h, n, q, k, v")]

use std::path::Path;

use safetensors::SafeTensors;
use serde_json::Value;

use crate::{Error, format_error, read};

struct Linear {
    /// `[out][in]`, row-major, as `PyTorch` stores it.
    w: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    attn_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

pub struct Bert {
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    eps: f32,
    vocab: usize,
    max_positions: usize,
    fingerprint: u64,
}

struct Tensors<'a> {
    st: SafeTensors<'a>,
    path: &'a Path,
}

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, Error> {
        let t =
            self.st.tensor(name).map_err(|e| format_error(self.path, format!("{name}: {e}")))?;
        if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape {
            return Err(format_error(
                self.path,
                format!("{name}: {:?} {:?}, expected F32 {shape:?}", t.dtype(), t.shape()),
            ));
        }
        Ok(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn linear(&self, name: &str, out: usize, inputs: usize) -> Result<Linear, Error> {
        Ok(Linear {
            w: self.get(&format!("{name}.weight"), &[out, inputs])?,
            b: self.get(&format!("{name}.bias"), &[out])?,
            inputs,
        })
    }

    fn norm(&self, name: &str, n: usize) -> Result<Norm, Error> {
        Ok(Norm {
            gamma: self.get(&format!("{name}.weight"), &[n])?,
            beta: self.get(&format!("{name}.bias"), &[n])?,
        })
    }
}

fn config_usize(cfg: &Value, key: &str, path: &Path) -> Result<usize, Error> {
    cfg[key]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format_error(path, format!("{key} missing or not a positive integer")))
}

impl Bert {
    pub fn load(config: &Path, weights: &Path) -> Result<Self, Error> {
        let cfg: Value =
            serde_json::from_slice(&read(config)?).map_err(|e| format_error(config, e))?;
        if cfg["model_type"] != "bert" || cfg["hidden_act"] != "gelu" {
            return Err(format_error(config, "expected a BERT model with GELU activations"));
        }
        let hidden = config_usize(&cfg, "hidden_size", config)?;
        let heads = config_usize(&cfg, "num_attention_heads", config)?;
        let inter = config_usize(&cfg, "intermediate_size", config)?;
        let n_layers = config_usize(&cfg, "num_hidden_layers", config)?;
        let vocab = config_usize(&cfg, "vocab_size", config)?;
        let max_positions = config_usize(&cfg, "max_position_embeddings", config)?;
        let types = config_usize(&cfg, "type_vocab_size", config)?;
        if hidden % heads != 0 {
            return Err(format_error(config, "hidden_size is not a multiple of the heads"));
        }
        #[allow(clippy::cast_possible_truncation, reason = "an epsilon")]
        let eps = cfg["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32;

        let bytes = read(weights)?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| format_error(weights, e))?;
        let t = Tensors { st, path: weights };
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                q: t.linear(&format!("{p}.attention.self.query"), hidden, hidden)?,
                k: t.linear(&format!("{p}.attention.self.key"), hidden, hidden)?,
                v: t.linear(&format!("{p}.attention.self.value"), hidden, hidden)?,
                out: t.linear(&format!("{p}.attention.output.dense"), hidden, hidden)?,
                attn_norm: t.norm(&format!("{p}.attention.output.LayerNorm"), hidden)?,
                up: t.linear(&format!("{p}.intermediate.dense"), inter, hidden)?,
                down: t.linear(&format!("{p}.output.dense"), hidden, inter)?,
                out_norm: t.norm(&format!("{p}.output.LayerNorm"), hidden)?,
            });
        }
        let mut token_type = t.get("embeddings.token_type_embeddings.weight", &[types, hidden])?;
        token_type.truncate(hidden);
        // FNV-1a over the weight file's bytes, sampled: enough to tell two models apart.
        let mut fingerprint: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes.iter().step_by(4097).chain(&bytes.len().to_le_bytes()) {
            fingerprint = (fingerprint ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(Bert {
            words: t.get("embeddings.word_embeddings.weight", &[vocab, hidden])?,
            positions: t.get("embeddings.position_embeddings.weight", &[max_positions, hidden])?,
            token_type,
            embed_norm: t.norm("embeddings.LayerNorm", hidden)?,
            layers,
            hidden,
            heads,
            eps,
            vocab,
            max_positions,
            fingerprint,
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    pub fn fingerprint(&self) -> String {
        format!("{:016x}", self.fingerprint)
    }

    /// The last layer's hidden states, `[tokens][hidden]`. Ids beyond the vocabulary read as
    /// id 0 and tokens beyond the position table are cut (callers keep to both).
    pub fn forward(&self, ids: &[u32]) -> Vec<f32> {
        let h = self.hidden;
        let n = ids.len().min(self.max_positions);
        let mut x = vec![0.0f32; n * h];
        for (t, (row, &id)) in x.chunks_exact_mut(h).zip(ids).enumerate() {
            let id = usize::try_from(id).ok().filter(|i| *i < self.vocab).unwrap_or(0);
            let w = &self.words[id * h..(id + 1) * h];
            let p = &self.positions[t * h..(t + 1) * h];
            for (i, r) in row.iter_mut().enumerate() {
                *r = w[i] + p[i] + self.token_type[i];
            }
        }
        layer_norm(&mut x, &self.embed_norm, self.eps);
        for layer in &self.layers {
            self.layer(layer, &mut x, n);
        }
        x
    }

    fn layer(&self, l: &Layer, x: &mut [f32], n: usize) {
        let h = self.hidden;
        let dh = h / self.heads;
        let q = l.q.apply(x, n);
        let k = l.k.apply(x, n);
        let v = l.v.apply(x, n);
        #[allow(clippy::cast_precision_loss, reason = "a head size")]
        let scale = 1.0 / (dh as f32).sqrt();
        let mut ctx = vec![0.0f32; n * h];
        let mut scores = vec![0.0f32; n];
        for head in 0..self.heads {
            let off = head * dh;
            for i in 0..n {
                let qi = &q[i * h + off..i * h + off + dh];
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = dot(qi, &k[j * h + off..j * h + off + dh]) * scale;
                }
                softmax(&mut scores);
                let out = &mut ctx[i * h + off..i * h + off + dh];
                for (j, s) in scores.iter().enumerate() {
                    for (o, vv) in out.iter_mut().zip(&v[j * h + off..j * h + off + dh]) {
                        *o += s * vv;
                    }
                }
            }
        }
        let attn = l.out.apply(&ctx, n);
        for (a, b) in x.iter_mut().zip(&attn) {
            *a += b;
        }
        layer_norm(x, &l.attn_norm, self.eps);
        let mut up = l.up.apply(x, n);
        for u in &mut up {
            *u = gelu(*u);
        }
        let down = l.down.apply(&up, n);
        for (a, b) in x.iter_mut().zip(&down) {
            *a += b;
        }
        layer_norm(x, &l.out_norm, self.eps);
    }
}

impl Linear {
    /// `x · Wᵀ + b` for `n` rows of `x`.
    fn apply(&self, x: &[f32], n: usize) -> Vec<f32> {
        let outs = self.b.len();
        let mut y = vec![0.0f32; n * outs];
        // Weight row outer, tokens inner: each row is read once and stays in cache.
        for (o, w) in self.w.chunks_exact(self.inputs).enumerate() {
            for t in 0..n {
                y[t * outs + o] = dot(&x[t * self.inputs..(t + 1) * self.inputs], w) + self.b[o];
            }
        }
        y
    }
}

/// Eight independent sums so the compiler can keep them in vector registers.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in s.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in s.iter_mut() {
        *x /= sum;
    }
}

fn layer_norm(x: &mut [f32], n: &Norm, eps: f32) {
    let h = n.gamma.len();
    #[allow(clippy::cast_precision_loss, reason = "a hidden size")]
    let hf = h as f32;
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / hf;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / hf;
        let inv = 1.0 / (var + eps).sqrt();
        for (i, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * n.gamma[i] + n.beta[i];
        }
    }
}

/// GELU with the exact erf, as BERT's `gelu`.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// erf through Numerical Recipes' Chebyshev fit of erfc (fractional error < 1.2e-7), in f64.
fn erf(x: f32) -> f32 {
    let x = f64::from(x);
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    #[allow(clippy::cast_possible_truncation, reason = "back to f32")]
    let r = if x >= 0.0 { 1.0 - y } else { y - 1.0 } as f32;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3)]
        {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..19u8).map(f32::from).collect();
        let want: f32 = (0..19u16).map(|i| f32::from(i * i)).sum();
        assert!((dot(&a, &a) - want).abs() < 1e-3);
    }
}
