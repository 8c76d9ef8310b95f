// Engine.Tensors.Tensor, not System.Numerics.Tensors.Tensor<T>, which files importing TensorPrimitives would also see.
global using Tensor = Engine.Tensors.Tensor;
