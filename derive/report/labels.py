"""The words of a report, per language: English (default) and Korean (the seed note's readers).

Only prose and headings are translated; the mathematics is the same in every language.

>>> label("en", "forward"), label("ko", "forward")
('Forward pass', '순전파')
"""

from __future__ import annotations

from derive.errors import DeriveError, did_you_mean
from derive.report.numformat import plain

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Derivation report: {name}",
        "intro": "A network of {sizes} units ({activations}), loss {loss} ({reduction}), learning rate {lr}, "
        "batch of {batch}. Every number is rounded from the exact (float64) value: to {digits} decimal "
        "places, or {digits} significant digits below 1, in scientific notation below 10⁻⁴ and from 10⁶, as 0 below "
        "10⁻¹⁵; no rounded number is used again in a later step.",
        "names": "Names in derive's other outputs: {report} here are {grads} in derive grads and "
        "Derivation.compact; derive code takes each layer whole: {layers}.",
        "names_layers": "Names in derive's other outputs: derive code takes each layer whole: {layers}.",
        "picture": "The network",
        "picture_caption": "Edges: weight, its value and the gradient of the loss with respect to it. "
        "Units: pre-activation z and activation value.",
        "forward": "Forward pass",
        "forward_text": "Each unit adds its weighted inputs and its bias (the weighted sum z), then applies "
        "its activation.",
        "layer": "Layer {layer}",
        "loss": "Loss",
        "loss_text": "The prediction is the last layer's output.",
        "backward": "Backward pass",
        "backward_text": "Layer by layer in reverse, each gradient is a product of local derivatives along "
        "every path from the loss to the parameter (the chain rule), summed over the paths.",
        "local": "Local derivatives, layer {layer}",
        "gradients": "Gradients, layer {layer}",
        "compact_text": "Each gradient is shown as its chain, then in a compact closed form over the "
        "forward quantities.",
        "deltas": "Error terms δ = ∂L/∂z, layer {layer}",
        "closed": "Closed forms",
        "closed_text": "The gradients over inputs, targets and parameters only.",
        "closed_omitted": "The closed form of {name} is too long to show; the forms above give it in parts.",
        "update": "Update",
        "update_text": "Gradient descent with learning rate α = {lr}: W(t+1) = W(t) − α ∂L/∂W(t), all "
        "parameters at once.",
        "update_optimizer": "{optimizer} with torch.optim.{torch}'s update, learning rate α = {lr}{options}. "
        "{rule} The first step (t = {t}) for every parameter, last layer first:",
        "rule_sgd": "The gradient g = ∂L/∂W + λW (weight decay λ enters the gradient); the momentum buffer "
        "b(t) = μ b(t−1) + (1 − τ) g, with b(1) = g; W(t+1) = W(t) − α (g + μ b(t)) with Nesterov momentum, "
        "else W(t+1) = W(t) − α b(t).",
        "rule_adam": "Weight decay λ enters the gradient g = ∂L/∂W + λW; the moments m(t) = β₁ m(t−1) + "
        "(1 − β₁) g and v(t) = β₂ v(t−1) + (1 − β₂) g² start at 0 and are divided by 1 − βᵗ (bias "
        "correction); W(t+1) = W(t) − α m̂ / (√v̂ + ε).",
        "rule_adamw": "As Adam, but weight decay is decoupled: W(t) is first multiplied by 1 − αλ, and the "
        "moments see the gradient ∂L/∂W alone.",
        "rule_rmsprop": "The mean square v(t) = a v(t−1) + (1 − a) g² (centered: minus the square of the "
        "mean gradient ḡ), s = √v + ε; W(t+1) = W(t) − α g / s, or with momentum μ the buffer "
        "b(t) = μ b(t−1) + g / s and W(t+1) = W(t) − α b(t).",
        "rule_adagrad": "The sum of squares G(t) = G(t−1) + g²; the rate α / (1 + (t − 1) η) with lr_decay "
        "η; W(t+1) = W(t) − α g / (√G + ε).",
        "frozen_kept": "{name} is frozen: it keeps its value.",
        "steps": "Training steps",
        "steps_text": "The parameters before each step t and the loss there.",
        "decreasing": "The loss decreases at every step.",
        "not_decreasing": "The loss does not decrease at every step.",
        "matrix": "Matrix form",
        "matrix_text": "With a batch of {batch} samples the same computation proceeds in matrix form: one "
        "row per sample, Z = A Wᵀ + 1 bᵀ.",
        "matrix_backward": "ℓ⁽ⁿ⁾ is the loss of sample n and L = (1/{count}) Σₙ ℓ⁽ⁿ⁾. The error terms "
        "Δ = ∂ℓ/∂Z have one row per sample; the gradients are the mean over the batch.",
        "parameter": "parameter",
        "value": "value",
        "gradient": "gradient",
        "updated": "updated",
        "graph_intro": "A model of {ops} operations and {parameters} parameters, loss {loss} ({reduction}), "
        "learning rate {lr}, batch of {batch}. Every number is rounded from the exact (float64) value: to "
        "{digits} decimal places, or {digits} significant digits below 1, in scientific notation below 10⁻⁴ and "
        "from 10⁶, as 0 below 10⁻¹⁵; no rounded number is used again in a later step.",
        "model": "The model",
        "penalty_text": "The loss includes a penalty on chosen parameters, λ₂ Σ p² (L2) and λ₁ Σ |p| (L1), derived "
        "with the rest of L. It is not an optimizer's weight decay: with plain SGD an L2 penalty λ and weight_decay 2λ "
        "give the same steps, but Adam divides the penalty's gradient by √v̂ like any other gradient, while AdamW "
        "shrinks every weight by lr·weight_decay directly, so there they differ.",
        "hessian": "Second order: the Hessian",
        "hessian_text": "The second derivatives ∂²L/∂p_i∂p_j of the loss: the curvature of the loss around the "
        "current parameters (symmetric: each pair once).",
        "hessian_order": "Rows and columns in the order {names}.",
        "hessian_rate": "Its largest eigenvalue is λ_max = {top}: on the local quadratic model, gradient descent "
        "is stable for a learning rate α < 2/λ_max = {bound}.",
        "through_time": "Through time",
        "through_time_text": "Backpropagation through time multiplies one step's Jacobian ∂h_{{t+1}}/∂h_t per step: "
        "the norm of their product ∂h_T/∂h_t shows how much of the last step's gradient reaches step t "
        "(it shrinks when the factors are small, the vanishing gradient, and grows when they are large).",
        "through_time_of": "Hidden states of {name}, from the first step to the last:",
        "graph_picture_caption": "The graph: the input X, each operation in the column of its depth (with "
        "its shape), the loss L.",
        "model_text": "Its inputs, parameter tensors and operations, in the order forward computes them.",
        "node": "node",
        "op": "operation",
        "shape": "shape",
        "graph_forward_text": "Each operation as a tensor equation with its values; small tensors element by "
        "element, with the numbers substituted.",
        "graph_loss_text": "The loss of the model's output against the targets.",
        "graph_backward_text": "From the last operation to the first: the error term δ = ∂L/∂v of every "
        "element v is the sum, over the operations that use v, of their δ times the local derivative. Each "
        "operation's local derivatives are written for its first element.",
        "delta_of": "Error terms δ of {name}",
        "graph_gradients": "Gradients",
        "graph_gradients_text": "Each parameter's gradient is the sum, over every use of the parameter, of "
        "the δ of the element that uses it times the local derivative.",
        "tensor_title": "Derivation report in matrix form: {name}",
        "tensor_intro": "A model of {ops} operations and {parameters} parameters in {tensors} tensors, loss {loss} "
        "({reduction}), learning rate {lr}, batch of {batch}. The gradient is derived at the tensor level: each "
        "equation defines a whole tensor (its shape under its name), and the numbers are its values rounded to "
        "{digits} decimal places (large tensors cut to their first rows and columns).",
        "tensor": "The gradient in matrix form",
        "tensor_text": "Reverse mode over the model's operations: the forward tensors in evaluation order, the loss, "
        "then ∂L/∂V of every tensor V from the last operation to the first (summed where V has several users), "
        "and each parameter's gradient. ⊙ is the element-wise product, ⋆ a correlation, ∗ a full convolution.",
        "tensor_forward": "Forward",
        "tensor_backward": "Backward",
        "tensor_gradients": "Gradients of the parameters",
        "tensor_update": "Gradient descent with learning rate α = {lr}: each parameter tensor P becomes "
        "P − α ∂L/∂P.",
        "tensor_one_step": "The matrix form shows one step of plain gradient descent; {asked}.",
        "proofs": "Appendix: proofs of the tensor rules",
        "proofs_text": "Each rule above was checked against the scalar engine's derivation of a small instance of "
        "the same operation with the same options (every size at least 2 and distinct): ∂(Σ G ⊙ op)/∂input for "
        "every entry, in exact rational arithmetic where the rule is rational, else to 40 of 50 digits at 3 random "
        "points (or in float64 where the rule runs torch's own kernel).",
        "proof_op": "operation",
        "proof_instance": "instance",
        "proof_result": "result",
        "proof_holds": "holds for all {entries} entries ({arithmetic})",
        "proof_fails": "FAILS: {failure}",
        "proof_not_proved": "not proved (the instance is too large for the scalar engine)",
        "attention": "Attention, worked through",
        "attention_text": "The attention {name} as a textbook page: {heads_text} over {tokens} tokens, each head "
        "d = {width} wide, the scores scaled by {scale}. Every product is written with the numbers it multiplies (a "
        "transpose as its values); each result is derive's float64 value, rounded.",
        "attention_projections": "The input and the projections",
        "attention_rows": "W_{letter} is rows {rows} of {tensor}{bias} (torch's names).",
        "attention_bias_rows": ", and b_{letter} the same entries of {tensor}",
        "attention_split": "The {heads} heads: head h takes its {width} columns of Q, K and V.",
        "attention_head": "Head {head}, in full",
        "attention_mask": "The mask: a masked score is −∞, takes no part in its row's softmax and gets weight 0.",
        "attention_masked_row": "Every score of row {row} is masked: torch's scaled_dot_product_attention gives that "
        "row weights of 0, and so an output of 0.",
        "attention_softmax": "Each row of weights is the softmax of its row of scores, exp(s) / Σ exp(s):",
        "attention_other_heads": "The other heads",
        "attention_concat": "Concatenation, output projection, residual",
        "attention_out_rows": "The heads side by side make O; W_O and b_O are {tensor} and its bias.",
        "attention_residual": "The residual adds the block's input: H = {name} + Y.",
        "attention_norm_row": "LayerNorm ({tensor}) of row 1, written out (μ and σ over the row):",
        "attention_backward": "Backward through the block",
        "attention_loss": "The rest of the model takes N to the loss, L = {loss}; the walk-through above has every "
        "step, and ∂L/∂N from it starts the way back.",
        "attention_norm_back": "LayerNorm's backward for row 1: with g = γ ⊙ ∂L/∂n, ∂L/∂h = (g − mean(g) − x̂ · "
        "mean(g ⊙ x̂)) / σ.",
        "attention_head_back": "Head {head} backward, in full",
        "attention_other_heads_back": "The other heads backward",
        "attention_jacobian": "The softmax Jacobian of row {row} (head {head}), ∂a/∂s = diag(a) − a aᵀ, with its "
        "numbers, applied to ∂L/∂a:",
        "attention_rowsum": "All rows at once: ∂L/∂S = A ⊙ (∂L/∂A − r 1ᵀ), with r = (A ⊙ ∂L/∂A) 1.",
        "attention_projections_back": "The projections' gradients",
        "attention_grad_rows": "∂L/∂W_{letter} is rows {rows} of ∂L/∂{tensor}{bias}.",
        "attention_key_bias": "∂L/∂b_K is 0, whatever the data: b_K adds q_i · b_K to every score of row i, and a "
        "softmax does not change when its whole row shifts by the same amount.",
        "attention_one_head": "one head",
        "attention_heads": "{heads} heads",
        "attention_paths": "Two paths to the input",
        "attention_paths_text": "The input reaches the loss through the residual (∂L/∂H itself) and through the "
        "attention (back through Q, K and V); its gradient is the sum of the two.",
        "attention_why": "Why the design is what it is",
        "attention_why_scale": "Each row's softmax with the scores scaled by {scale}, as the block does, and without "
        "the scale (the same weights): its entropy H(a) in nats and the Frobenius norm of its Jacobian. Larger "
        "scores make the softmax saturate: H falls toward 0 and so does ‖J‖_F, and with it every gradient that "
        "passes through the row.",
        "attention_why_mean": "Mean over the rows: H = {entropy}, ‖J‖_F = {norm} with the scale; H = {entropy_plain}, "
        "‖J‖_F = {norm_plain} without (uniform weights would give H = {uniform}).",
        "attention_why_paths": "Per token, the two contributions to ∂L/∂x: through the residual path and through the "
        "attention path, and the cosine between them. The residual carries the gradient to x whatever the "
        "attention's softmax does.",
        "attention_col_head": "head",
        "attention_col_row": "row",
        "attention_col_token": "token",
        "attention_col_entropy_plain": "H(a) no scale",
        "attention_col_norm_plain": "‖J‖_F no scale",
    },
    "ko": {
        "title": "유도 보고서: {name}",
        "intro": "유닛 {sizes}개({activations})의 신경망, 손실 함수 {loss}({reduction}), 학습률 {lr}, "
        "배치 크기 {batch}. 모든 숫자는 정확한(float64) 값을 반올림한 값으로, 소수점 {digits}자리까지, "
        "1보다 작은 값은 유효숫자 {digits}자리로, 10⁻⁴ 미만과 10⁶ 이상은 과학적 표기법으로, 10⁻¹⁵ 미만은 0으로 나타내며, "
        "반올림한 값을 다음 단계에서 다시 사용하지 않습니다.",
        "names": "다른 출력의 이름: 여기의 {report}는 derive grads와 Derivation.compact에서 {grads}입니다. "
        "derive code는 층 전체를 하나로 받습니다: {layers}.",
        "names_layers": "다른 출력의 이름: derive code는 층 전체를 하나로 받습니다: {layers}.",
        "picture": "신경망 구조",
        "picture_caption": "간선: 가중치, 그 값, 그리고 그 가중치에 대한 손실의 기울기. "
        "노드: 가중합 z와 활성화 값.",
        "forward": "순전파",
        "forward_text": "각 유닛은 입력과 가중치의 곱을 모두 더하고 편향을 더한 가중합 z를 계산한 뒤, "
        "활성화 함수를 적용합니다.",
        "layer": "{layer}번째 계층",
        "loss": "오차 계산",
        "loss_text": "예측값은 마지막 계층의 출력입니다.",
        "backward": "역전파",
        "backward_text": "계층의 역순으로, 각 기울기는 손실에서 매개변수까지의 모든 경로를 따라 국소 "
        "미분을 곱한 값(연쇄법칙)을 경로에 대해 더한 것입니다.",
        "local": "국소 미분, {layer}번째 계층",
        "gradients": "기울기, {layer}번째 계층",
        "compact_text": "각 기울기를 연쇄법칙으로 쓴 뒤, 순전파 값으로 나타낸 간단한 닫힌 형태로 씁니다.",
        "deltas": "오차 항 δ = ∂L/∂z, {layer}번째 계층",
        "closed": "닫힌 형태",
        "closed_text": "입력, 실젯값, 매개변수만으로 나타낸 기울기입니다.",
        "closed_omitted": "{name}의 닫힌 형태는 너무 길어서 생략합니다. 위의 식들이 이를 나누어 보여 줍니다.",
        "update": "가중치 갱신",
        "update_text": "학습률 α = {lr}인 경사 하강법: W(t+1) = W(t) − α ∂L/∂W(t), 모든 매개변수를 "
        "동시에 갱신합니다.",
        "update_optimizer": "torch.optim.{torch}의 갱신 규칙을 따르는 {optimizer}, 학습률 α = {lr}{options}. "
        "{rule} 첫 단계(t = {t})를 마지막 계층부터 매개변수마다 보입니다:",
        "rule_sgd": "기울기 g = ∂L/∂W + λW (가중치 감쇠 λ는 기울기에 더해짐); 모멘텀 버퍼 "
        "b(t) = μ b(t−1) + (1 − τ) g, b(1) = g; 네스테로프 모멘텀이면 W(t+1) = W(t) − α (g + μ b(t)), "
        "아니면 W(t+1) = W(t) − α b(t).",
        "rule_adam": "가중치 감쇠 λ는 기울기 g = ∂L/∂W + λW에 더해집니다; 모멘트 m(t) = β₁ m(t−1) + "
        "(1 − β₁) g, v(t) = β₂ v(t−1) + (1 − β₂) g²는 0에서 시작하고 1 − βᵗ로 나누어 편향을 "
        "보정합니다; W(t+1) = W(t) − α m̂ / (√v̂ + ε).",
        "rule_adamw": "Adam과 같지만 가중치 감쇠가 분리되어 있습니다: W(t)에 먼저 1 − αλ를 곱하고, 모멘트는 "
        "∂L/∂W만 봅니다.",
        "rule_rmsprop": "제곱 평균 v(t) = a v(t−1) + (1 − a) g² (centered: 평균 기울기 ḡ의 제곱을 뺌), "
        "s = √v + ε; W(t+1) = W(t) − α g / s, 모멘텀 μ가 있으면 b(t) = μ b(t−1) + g / s, "
        "W(t+1) = W(t) − α b(t).",
        "rule_adagrad": "제곱합 G(t) = G(t−1) + g²; 학습률 α / (1 + (t − 1) η) (lr_decay η); "
        "W(t+1) = W(t) − α g / (√G + ε).",
        "frozen_kept": "{name}은(는) 고정되어 값을 유지합니다.",
        "steps": "학습 단계",
        "steps_text": "각 단계 t 전의 매개변수와 그때의 손실입니다.",
        "decreasing": "단계마다 손실이 감소합니다.",
        "not_decreasing": "손실이 모든 단계에서 감소하지는 않습니다.",
        "matrix": "행렬 계산",
        "matrix_text": "배치 크기가 {batch}이므로 같은 계산을 행렬로 진행합니다: 샘플마다 한 행, "
        "Z = A Wᵀ + 1 bᵀ.",
        "matrix_backward": "ℓ⁽ⁿ⁾은 샘플 n의 손실이고 L = (1/{count}) Σₙ ℓ⁽ⁿ⁾입니다. 오차 항 Δ = ∂ℓ/∂Z는 "
        "샘플마다 한 행이고, 기울기는 배치에 대한 평균입니다.",
        "parameter": "매개변수",
        "value": "값",
        "gradient": "기울기",
        "updated": "갱신 후",
        "graph_intro": "연산 {ops}개, 매개변수 {parameters}개의 모델, 손실 함수 {loss}({reduction}), 학습률 {lr}, "
        "배치 크기 {batch}. 모든 숫자는 정확한(float64) 값을 반올림한 값으로, 소수점 {digits}자리까지, "
        "1보다 작은 값은 유효숫자 {digits}자리로, 10⁻⁴ 미만과 10⁶ 이상은 과학적 표기법으로, 10⁻¹⁵ 미만은 0으로 나타내며, "
        "반올림한 값을 다음 단계에서 다시 사용하지 않습니다.",
        "model": "모델 구조",
        "penalty_text": "손실에는 선택한 매개변수에 대한 벌점 λ₂ Σ p²(L2)와 λ₁ Σ |p|(L1)이 포함되며, L의 나머지와 함께 "
        "미분합니다. 이는 옵티마이저의 가중치 감쇠와 다릅니다: 일반 SGD에서는 L2 벌점 λ와 weight_decay 2λ가 같은 갱신을 "
        "주지만, Adam은 벌점의 기울기도 다른 기울기처럼 √v̂로 나누고 AdamW는 모든 가중치를 lr·weight_decay만큼 직접 "
        "줄이므로 서로 다릅니다.",
        "hessian": "2차 미분: 헤세 행렬",
        "hessian_text": "손실의 2차 미분 ∂²L/∂p_i∂p_j: 현재 매개변수 주변에서 손실의 곡률입니다(대칭: 각 쌍은 한 번).",
        "hessian_order": "행과 열의 순서: {names}.",
        "hessian_rate": "가장 큰 고윳값은 λ_max = {top}입니다: 국소 2차 모델에서 경사 하강법은 학습률 "
        "α < 2/λ_max = {bound}일 때 안정적입니다.",
        "through_time": "시간에 따른 기울기",
        "through_time_text": "시간 역전파는 단계마다 야코비 행렬 ∂h_{{t+1}}/∂h_t를 곱합니다. 그 곱 ∂h_T/∂h_t의 노름은 "
        "마지막 단계의 기울기가 단계 t까지 얼마나 전달되는지 보여 줍니다(인수가 작으면 줄어들고—기울기 소실—크면 "
        "커집니다).",
        "through_time_of": "{name}의 은닉 상태, 첫 단계부터 마지막 단계까지:",
        "graph_picture_caption": "그래프: 입력 X, 깊이에 따라 배치한 각 연산(과 그 형태), 손실 L.",
        "model_text": "입력, 매개변수 텐서, 연산을 순전파가 계산하는 순서대로 나열합니다.",
        "node": "노드",
        "op": "연산",
        "shape": "형태",
        "graph_forward_text": "각 연산을 텐서 식과 그 값으로 씁니다. 작은 텐서는 원소마다 숫자를 대입해 씁니다.",
        "graph_loss_text": "모델의 출력과 실젯값으로 계산한 손실입니다.",
        "graph_backward_text": "마지막 연산부터 처음 연산까지: 각 원소 v의 오차 항 δ = ∂L/∂v는 v를 사용하는 "
        "연산들의 δ와 국소 미분의 곱을 모두 더한 값입니다. 각 연산의 국소 미분은 첫 원소에 대해 씁니다.",
        "delta_of": "{name}의 오차 항 δ",
        "graph_gradients": "기울기",
        "graph_gradients_text": "각 매개변수의 기울기는 그 매개변수를 사용하는 모든 곳에서, 사용하는 원소의 δ와 "
        "국소 미분의 곱을 더한 값입니다.",
        "tensor_title": "행렬 형태의 유도 보고서: {name}",
        "tensor_intro": "연산 {ops}개, 텐서 {tensors}개에 매개변수 {parameters}개인 모델, 손실 함수 {loss}({reduction}), "
        "학습률 {lr}, 배치 크기 {batch}. 기울기를 텐서 단위로 유도합니다: 각 식은 텐서 하나 전체를 정의하고(이름 아래에 "
        "형태), 숫자는 그 값을 소수점 {digits}자리로 반올림한 것입니다(큰 텐서는 앞쪽 행과 열만).",
        "tensor": "행렬 형태의 기울기",
        "tensor_text": "모델의 연산에 대한 역방향 모드: 계산 순서대로 순전파 텐서, 손실, 그리고 마지막 연산부터 처음 "
        "연산까지 모든 텐서 V의 ∂L/∂V(V를 여러 곳에서 쓰면 더함)와 각 매개변수의 기울기. ⊙는 원소별 곱, ⋆는 상관, "
        "∗는 완전 합성곱입니다.",
        "tensor_forward": "순전파",
        "tensor_backward": "역전파",
        "tensor_gradients": "매개변수의 기울기",
        "tensor_update": "학습률 α = {lr}인 경사 하강법: 각 매개변수 텐서 P는 P − α ∂L/∂P가 됩니다.",
        "tensor_one_step": "행렬 형태는 일반 경사 하강법의 한 단계를 보여 줍니다. {asked}",
        "proofs": "부록: 텐서 규칙의 증명",
        "proofs_text": "위의 각 규칙은 같은 연산, 같은 옵션의 작은 사례(모든 크기가 2 이상이고 서로 다름)를 스칼라 엔진으로 "
        "유도한 결과와 비교했습니다: 모든 원소의 ∂(Σ G ⊙ op)/∂input을, 규칙이 유리식이면 정확한 유리수 연산으로, "
        "아니면 무작위 점 3개에서 50자리 중 40자리까지(torch의 커널을 쓰는 규칙은 float64로) 확인합니다.",
        "proof_op": "연산",
        "proof_instance": "사례",
        "proof_result": "결과",
        "proof_holds": "{entries}개 원소 모두 성립({arithmetic})",
        "proof_fails": "실패: {failure}",
        "proof_not_proved": "증명하지 않음(사례가 스칼라 엔진에 너무 큼)",
        "attention": "어텐션, 한 단계씩",
        "attention_text": "교과서의 한 쪽처럼 푼 어텐션 {name}: 토큰 {tokens}개에 헤드 {heads}개, 헤드마다 d = {width}, "
        "점수에 {scale}을 곱합니다. 모든 곱은 곱하는 수와 함께 적었고(전치는 그 값으로), 각 결과는 derive의 float64 값을 "
        "반올림한 것입니다.",
        "attention_projections": "입력과 사영",
        "attention_rows": "W_{letter}는 {tensor}의 {rows}행입니다{bias}(torch의 이름).",
        "attention_bias_rows": ", b_{letter}는 {tensor}의 같은 항목",
        "attention_split": "헤드 {heads}개: 헤드 h는 Q, K, V의 자기 열 {width}개를 가집니다.",
        "attention_head": "헤드 {head}, 전부 풀어서",
        "attention_mask": "마스크: 가려진 점수는 −∞이며, 그 행의 소프트맥스에 참여하지 않고 가중치 0을 받습니다.",
        "attention_masked_row": "{row}행의 점수가 모두 가려졌습니다: torch의 scaled_dot_product_attention은 그 행에 "
        "가중치 0, 따라서 출력 0을 줍니다.",
        "attention_softmax": "가중치의 각 행은 그 행 점수의 소프트맥스 exp(s) / Σ exp(s)입니다:",
        "attention_other_heads": "나머지 헤드",
        "attention_concat": "이어 붙이기, 출력 사영, 잔차",
        "attention_out_rows": "헤드를 나란히 놓으면 O가 됩니다; W_O와 b_O는 {tensor}와 그 편향입니다.",
        "attention_residual": "잔차 연결이 블록의 입력을 더합니다: H = {name} + Y.",
        "attention_norm_row": "1행의 LayerNorm({tensor})을 풀어 쓰면(μ와 σ는 그 행에 대해):",
        "attention_backward": "블록을 거슬러 역전파",
        "attention_loss": "모델의 나머지가 N을 손실 L = {loss}로 보냅니다; 위의 풀이에 모든 단계가 있고, 거기서 얻은 "
        "∂L/∂N에서 되돌아가기 시작합니다.",
        "attention_norm_back": "1행의 LayerNorm 역전파: g = γ ⊙ ∂L/∂n이라 하면 ∂L/∂h = (g − mean(g) − x̂ · "
        "mean(g ⊙ x̂)) / σ.",
        "attention_head_back": "헤드 {head}의 역전파, 전부 풀어서",
        "attention_other_heads_back": "나머지 헤드의 역전파",
        "attention_jacobian": "{row}행(헤드 {head})의 소프트맥스 야코비안 ∂a/∂s = diag(a) − a aᵀ을 수치로 쓰고 "
        "∂L/∂a에 적용합니다:",
        "attention_rowsum": "모든 행을 한꺼번에: ∂L/∂S = A ⊙ (∂L/∂A − r 1ᵀ), 여기서 r = (A ⊙ ∂L/∂A) 1.",
        "attention_projections_back": "사영의 기울기",
        "attention_grad_rows": "∂L/∂W_{letter}는 ∂L/∂{tensor}의 {rows}행입니다{bias}.",
        "attention_key_bias": "∂L/∂b_K는 데이터와 상관없이 0입니다: b_K는 i행의 모든 점수에 q_i · b_K를 더하고, "
        "소프트맥스는 한 행 전체가 같은 양만큼 움직여도 변하지 않습니다.",
        "attention_one_head": "헤드 1개",
        "attention_heads": "헤드 {heads}개",
        "attention_paths": "입력으로 가는 두 경로",
        "attention_paths_text": "입력은 잔차(∂L/∂H 그대로)와 어텐션(Q, K, V를 거슬러)을 통해 손실에 이릅니다; "
        "입력의 기울기는 두 기여의 합입니다.",
        "attention_why": "왜 이렇게 설계되었는가",
        "attention_why_scale": "블록처럼 점수에 {scale}을 곱했을 때와 곱하지 않았을 때(같은 가중치) 각 행 소프트맥스의 "
        "엔트로피 H(a)(nat)와 야코비안의 프로베니우스 노름. 점수가 크면 소프트맥스가 포화됩니다: H가 0으로 떨어지고 "
        "‖J‖_F도 함께 작아져, 그 행을 지나는 모든 기울기가 줄어듭니다.",
        "attention_why_mean": "행들의 평균: 스케일이 있으면 H = {entropy}, ‖J‖_F = {norm}; 없으면 H = {entropy_plain}, "
        "‖J‖_F = {norm_plain} (균등한 가중치라면 H = {uniform}).",
        "attention_why_paths": "토큰마다 ∂L/∂x의 두 기여: 잔차 경로와 어텐션 경로, 그리고 둘 사이의 코사인. 잔차는 "
        "어텐션의 소프트맥스가 어떻든 기울기를 x까지 전달합니다.",
        "attention_col_head": "헤드",
        "attention_col_row": "행",
        "attention_col_token": "토큰",
        "attention_col_entropy_plain": "H(a) 스케일 없음",
        "attention_col_norm_plain": "‖J‖_F 스케일 없음",
    },
}

LANGUAGES = tuple(LABELS)


def check_lang(lang: str) -> str:
    """``lang`` if reports have words for it, else a `DeriveError`."""
    if lang not in LABELS:
        raise DeriveError(
            f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}.{did_you_mean(str(lang), LABELS)}"
        )
    return lang


def label(lang: str, key: str, **fields: object) -> str:
    """The text ``key`` in ``lang``, with ``fields`` filled in (numbers in scientific notation as plain text:
    prose is not LaTeX)."""
    return LABELS[lang][key].format(**{k: plain(v) if isinstance(v, str) else v for k, v in fields.items()})
